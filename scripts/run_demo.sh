#!/usr/bin/env bash
# Starts the job runner in the background and the dashboard in the foreground;
# Ctrl+C stops both. Called by `make demo` after migrating and loading demo data.
set -euo pipefail
PY=${PY:-.venv/bin/python}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8501}
mkdir -p var
"$PY" -m jobs > var/jobs.log 2>&1 &
JOBS_PID=$!
cleanup() { kill -TERM "$JOBS_PID" 2>/dev/null || true; wait "$JOBS_PID" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
"$PY" -m streamlit run server.py --server.address "$HOST" --server.port "$PORT" > var/dashboard.log 2>&1 &
DASH_PID=$!
for _ in $(seq 1 60); do
  if curl -fsS "http://$HOST:$PORT/_stcore/health" >/dev/null 2>&1; then break; fi
  sleep 1
done
cat <<MSG

  Dashboard:  http://$HOST:$PORT
  Anmeldung:  admin / Demo-Admin-2026   (Administrator:in)
              koordination / Demo-Koordination-2026   (Koordinator:in)
              lesen / Demo-Lesen-2026   (Lesezugriff)
  Protokolle: var/dashboard.log, var/jobs.log     Beenden: Strg+C

MSG
wait "$DASH_PID"
