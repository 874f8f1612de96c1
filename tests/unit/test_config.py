"""Settings: defaults of DESIGN §6, environment over .env, one clear line on bad values."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.platform.config import DEFAULTS, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_match_design():
    s = load_settings(environ={}, env_file=Path("/nonexistent"))
    assert (s.MAX_INQUIRY_SIZE, s.PLZ_PREFIX_DIGITS, s.DEFAULT_MAX_DISTANCE_KM) == (6, 2, 25)
    assert (s.MAX_OPEN_INQUIRIES_PER_SEARCH, s.COOLING_WEEKS, s.EMAIL_MIN_INTERVAL_DAYS) == (4, 4, 7)
    assert (s.FOLLOW_UP_DAYS, s.INQUIRY_EXPIRY_DAYS, s.CALL_SLOT_MINUTES, s.CALL_HORIZON_DAYS) == (7, 21, 5, 14)
    assert (s.MAX_CALL_ATTEMPTS, s.CALLERS, s.EMAIL_MAX_ATTEMPTS) == (3, 1, 5)
    assert s.DATABASE_URL == "sqlite:///var/app.db"


def test_env_file_then_environment(tmp_path):
    env = tmp_path / ".env"
    env.write_text("MAX_INQUIRY_SIZE=4\nCOOLING_WEEKS=2\n")
    s = load_settings(environ={"COOLING_WEEKS": "3"}, env_file=env)
    assert s.MAX_INQUIRY_SIZE == 4 and s.COOLING_WEEKS == 3


@pytest.mark.parametrize(
    "name,value,fragment",
    [
        ("MAX_INQUIRY_SIZE", "abc", "MAX_INQUIRY_SIZE muss eine ganze Zahl sein"),
        ("MAX_INQUIRY_SIZE", "0", "MAX_INQUIRY_SIZE muss zwischen 1 und 20"),
        ("DATABASE_URL", "postgresql://x@y/z", "postgresql+psycopg2://"),
        ("DATABASE_URL", "mysql://x", "DATABASE_URL wird nicht unterstützt"),
        ("SMTP_SECURITY", "tls13", "SMTP_SECURITY muss einer von"),
        ("COOKIE_SECURE", "vielleicht", "COOKIE_SECURE muss true oder false"),
        ("SECRET_KEY", "kurz", "SECRET_KEY muss mindestens 16"),
    ],
)
def test_bad_values_name_the_setting(name, value, fragment):
    with pytest.raises(SettingsError, match=fragment.replace("+", r"\+").replace("(", r"\(")):
        load_settings(environ={name: value}, env_file=Path("/nonexistent"))


def test_smtp_user_needs_password():
    with pytest.raises(SettingsError, match="SMTP_USER und SMTP_PASSWORD"):
        load_settings(environ={"SMTP_USER": "x"}, env_file=Path("/nonexistent"))


def test_every_setting_has_a_default_documented_in_readme():
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in DEFAULTS if f"`{name}`" not in readme and name not in readme]
    assert missing == []


def test_bad_setting_exits_2_with_one_line_and_no_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "core.cli", "create-admin"],
        cwd=ROOT, env={"PATH": "/usr/bin:/bin", "MAX_INQUIRY_SIZE": "viele", "HOME": "/tmp"},
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == ["Konfigurationsfehler: MAX_INQUIRY_SIZE muss eine ganze Zahl sein (gefunden: 'viele')."]
    assert "Traceback" not in proc.stderr


def test_inbox_settings_off_by_default_and_checked_when_on():
    assert load_settings(environ={}, env_file=None).inbox_enabled is False
    on = load_settings(environ={"IMAP_HOST": "imap.example.de", "IMAP_USER": "u", "IMAP_PASSWORD": "p",
                                "IMAP_SECURITY": "starttls", "IMAP_PORT": "143"}, env_file=None)
    assert on.inbox_enabled and (on.IMAP_PORT, on.IMAP_SECURITY, on.IMAP_FOLDER, on.IMAP_PROCESSED_FOLDER) == (
        143, "starttls", "INBOX", "Verarbeitet")
    with pytest.raises(SettingsError, match="IMAP_USER und IMAP_PASSWORD"):
        load_settings(environ={"IMAP_HOST": "imap.example.de"}, env_file=None)
    with pytest.raises(SettingsError, match="IMAP_SECURITY"):
        load_settings(environ={"IMAP_SECURITY": "tls"}, env_file=None)
    with pytest.raises(SettingsError, match="anderer Ordner"):
        load_settings(environ={"IMAP_HOST": "h", "IMAP_USER": "u", "IMAP_PASSWORD": "p", "IMAP_PROCESSED_FOLDER": "INBOX"},
                      env_file=None)
