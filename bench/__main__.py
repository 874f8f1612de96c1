"""Run every benchmark: `python -m bench [name ...]` (what `make bench` does).

Each bench/<name>.py (in name order; __main__ and modules starting with "_" excluded) runs
as its own subprocess with the repository root as working directory. A failing benchmark
does not stop the others; the exit code is non-zero at the end when any failed. Finally
all figures of bench/results/*.json are printed (results not written by this run are marked
"alt").

Names on the command line run only those benchmarks (e.g. `python -m bench datagen`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
RESULTS_DIR = BENCH_DIR / "results"


def discover() -> list[str]:
    return sorted(
        p.stem for p in BENCH_DIR.glob("*.py") if not p.stem.startswith("_") and p.stem != "__main__"
    )


def run_one(name: str) -> tuple[int, float]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    started = time.perf_counter()
    try:
        rc = subprocess.run([sys.executable, str(BENCH_DIR / f"{name}.py")], cwd=ROOT, env=env).returncode
    except KeyboardInterrupt:
        raise
    except OSError as exc:
        print(f"FEHLER: {name} ließ sich nicht starten: {exc}", file=sys.stderr)
        rc = 127
    return rc, time.perf_counter() - started


def _shown(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.3f}"


def print_summary(since: float) -> None:
    files = sorted(RESULTS_DIR.glob("*.json")) if RESULTS_DIR.is_dir() else []
    print()
    print("Zusammenfassung (bench/results/*.json)")
    print("=" * 60)
    if not files:
        print("  (keine Ergebnisse)")
        return
    for path in files:
        stale = path.stat().st_mtime < since
        print(f"{path.stem}{'  (alt, nicht in diesem Lauf geschrieben)' if stale else ''}")
        try:
            figures = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"  unlesbar: {exc}")
            continue
        if not isinstance(figures, dict):
            print("  unerwartetes Format (erwartet: {\"name\": Zahl})")
            continue
        width = max((len(k) for k in figures), default=10)
        for key, value in figures.items():
            print(f"  {key:<{width}}  {_shown(value):>14}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    available = discover()
    unknown = [n for n in argv if n not in available]
    if unknown:
        print(f"Fehler: unbekannte Benchmarks: {', '.join(unknown)} (vorhanden: {', '.join(available)})", file=sys.stderr)
        return 2
    names = argv or available
    since = time.time()
    outcomes: list[tuple[str, int, float]] = []
    for name in names:
        print(f"\n=== bench/{name}.py ===", flush=True)
        rc, seconds = run_one(name)
        outcomes.append((name, rc, seconds))
        print(f"=== {name}: {'ok' if rc == 0 else f'FEHLGESCHLAGEN (Exit {rc})'} nach {seconds:.1f} s ===", flush=True)
    print_summary(since - 1)
    failed = [name for name, rc, _ in outcomes if rc != 0]
    print()
    for name, rc, seconds in outcomes:
        print(f"  {'ok  ' if rc == 0 else 'FEHL'}  {name:<20} {seconds:8.1f} s")
    if failed:
        print(f"\n{len(failed)} von {len(outcomes)} Benchmarks fehlgeschlagen: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"\nAlle {len(outcomes)} Benchmarks erfolgreich.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
