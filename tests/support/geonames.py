"""Where the GeoNames test copy lives: TEST_GEONAMES_PATH, else ../shared next to the
checkout, else the workplace's /work/shared (CI clones the repository elsewhere)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CANDIDATES = [
    ROOT.parent / "shared" / "data" / "geonames" / "DE.txt",
    Path("/work/shared/data/geonames/DE.txt"),
]


def geonames_path() -> Path:
    env = os.environ.get("TEST_GEONAMES_PATH") or os.environ.get("BENCH_GEONAMES_PATH")
    if env:
        return Path(env)
    for candidate in CANDIDATES:
        if candidate.is_file():
            return candidate
    return CANDIDATES[0]
