"""A PostgreSQL server of the test's own (initdb into a temp dir, its own port), for fault
tests that stop and restart the database. The machine's shared server is never touched.

As root, the server runs as the `postgres` system user (initdb refuses root)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.support.databases import IN_CI


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    which = shutil.which("initdb")
    return Path(which).parent if which else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OwnPostgres:
    def __init__(self, base: Path | None = None):
        bindir = _bin_dir()
        if bindir is None:
            msg = "initdb not found (PostgreSQL server binaries)"
            if IN_CI:
                pytest.fail(msg + " - mandatory with CI=true", pytrace=False)
            pytest.skip(msg)
        self.bindir = bindir
        # pytest's tmp dirs are private to root; the server's user needs a folder of its own
        self.base = Path(tempfile.mkdtemp(prefix="tp_own_pg_")) if base is None or os.geteuid() == 0 else base
        base = self.base
        self.data = base / "data"
        self.sockets = base / "sockets"
        self.log = base / "server.log"
        self.port = _free_port()
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            self._as_user = ["runuser", "-u", "postgres", "--"]

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        out = subprocess.run([*self._as_user, *args], capture_output=True, text=True, timeout=120)
        if check and out.returncode != 0:
            raise AssertionError(f"{' '.join(args[:1])} failed ({out.returncode}): {out.stderr or out.stdout}")
        return out

    def init(self) -> "OwnPostgres":
        self.base.mkdir(parents=True, exist_ok=True)
        self.sockets.mkdir(exist_ok=True)
        if self._as_user:
            shutil.chown(self.base, "postgres", "postgres")
            shutil.chown(self.sockets, "postgres", "postgres")
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        return self

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", check=False)

    def is_up(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)

    def wait_down(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.is_up():
            if time.monotonic() > deadline:
                raise AssertionError("own PostgreSQL did not stop")
            time.sleep(0.05)
