"""Browser tests: a real dashboard server on a free loopback port, driven by Debian's
Chromium through Playwright (never a downloaded browser). Mandatory with CI=true."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from core.platform.db import dispose_engines
from tests.support.apptest import create_accounts
from tests.support.databases import IN_CI

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _need(condition: bool, why: str) -> None:
    if condition:
        return
    if IN_CI:
        pytest.fail(why + " - browser tests are mandatory with CI=true", pytrace=False)
    pytest.skip(why)


@pytest.fixture(scope="session")
def browser():
    _need(Path(CHROMIUM).exists(), f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(db_factories, tmp_path_factory):
    """Start `streamlit run server.py` against a fresh migrated SQLite database."""
    url = db_factories["sqlite"].new_url()
    create_accounts(url)
    dispose_engines()
    port = _free_port()
    var = tmp_path_factory.mktemp("e2e_var")
    env = dict(os.environ, DATABASE_URL=url, SECRET_KEY="e2e-secret-key-0123456789", PYTHONUNBUFFERED="1")
    log = open(var / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "server.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/_stcore/health", timeout=2) as r:
                if r.read().decode() == "ok":
                    break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        raise AssertionError("dashboard did not become healthy:\n" + (var / "server.log").read_text())
    yield {"url": base, "db": url, "log": var / "server.log"}
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
    _check_server_log(url, var / "server.log")


def _check_server_log(url: str, path: Path) -> None:
    """Issue 12: the dashboard's own log names no patient of its database."""
    from sqlalchemy import select

    from core.platform.db import get_engine, read_session
    from core.platform.models import Patient
    from tests.support.log_privacy import check_external_log

    with read_session(get_engine(url)) as s:
        patients = [tuple(r) for r in s.execute(select(Patient.first_name, Patient.last_name, Patient.email))]
    found = check_external_log("e2e-server", path.read_text(errors="replace"), patients)
    assert not found, "personal data in the dashboard log:\n" + "\n".join(found[:10])


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, locale="de-DE")
    pg = ctx.new_page()
    pg.set_default_timeout(45_000)  # generous: CI machines are busy; the waits are for states, not times
    yield pg
    ctx.close()


def wait_for_app(page) -> None:
    """Wait until Streamlit has finished running the script (pattern of Streamlit's own e2e)."""
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=30_000)


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
