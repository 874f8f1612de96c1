#!/usr/bin/env bash
# Runs the whole suite. pytest's exit code 5 ("no tests collected") is a failure here:
# CI must never pass without running tests. Extra pytest arguments may follow.
set -uo pipefail
PY=${1:-.venv/bin/python}
shift || true
# The import contracts first (.importlinter): a broken layer or a cycle fails the run.
"$(dirname "$PY")/lint-imports" --no-cache || exit 1
"$PY" -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "FEHLER: pytest hat keine Tests gefunden (exit 5) - das zählt als Fehlschlag." >&2
  exit 1
fi
exit "$rc"
