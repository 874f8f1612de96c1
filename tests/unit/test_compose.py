"""Issue 12 point 15: the compose file's production defaults. Docker is not run here; the
file is parsed and its properties checked: no published mail sink outside the dev profile,
the dashboard only behind the TLS proxy with secure cookies, secrets required."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.databases import IN_CI

ROOT = Path(__file__).resolve().parents[2]

try:
    import yaml
except ImportError:  # pragma: no cover - requirements-test.txt pins PyYAML
    if IN_CI:
        raise
    pytest.skip("PyYAML not installed (pip install -r requirements-test.txt)", allow_module_level=True)

REQUIRED_SECRETS = ("SECRET_KEY", "POSTGRES_PASSWORD", "SMTP_HOST", "EMAIL_SENDER", "DASHBOARD_HOST")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _production(compose: dict) -> dict[str, dict]:
    return {name: svc for name, svc in compose["services"].items() if not svc.get("profiles")}


def _host_ports(service: dict) -> list[str]:
    return [str(p) for p in service.get("ports", [])]


def test_p15_only_the_tls_proxy_publishes_ports(compose):
    published = {name: _host_ports(svc) for name, svc in _production(compose).items() if svc.get("ports")}
    assert set(published) == {"proxy"}, published
    assert "443:443" in published["proxy"]
    assert "ports" not in compose["services"]["dashboard"]
    assert compose["services"]["proxy"]["image"].startswith("caddy")


def test_p15_the_mail_sink_is_dev_only_and_never_published_beyond_loopback(compose):
    mailpit = compose["services"]["mailpit"]
    assert mailpit.get("profiles") == ["dev"]
    assert all(p.startswith("127.0.0.1:") for p in _host_ports(mailpit))
    for name, svc in _production(compose).items():
        env = svc.get("environment") or {}
        assert "mailpit" not in str(env.get("SMTP_HOST", "")), f"{name} sends to the mail sink by default"


def test_p15_the_proxy_terminates_tls_for_the_dashboard(compose):
    proxy = compose["services"]["proxy"]
    mount = next(v for v in proxy["volumes"] if v.endswith(":/etc/caddy/Caddyfile:ro"))
    caddyfile = (ROOT / mount.split(":")[0]).read_text()
    assert re.search(r"^\s*reverse_proxy dashboard:8501\s*$", caddyfile, re.M)
    assert re.search(r"^\s*tls \{\$TLS_MODE:internal\}", caddyfile, re.M)  # its own certificate by default
    assert "Strict-Transport-Security" in caddyfile
    assert not re.search(r"^\s*http://", caddyfile, re.M)  # no plain-HTTP site


def test_p15_secure_cookies_and_the_proxy_header_for_login_throttling(compose):
    for name in ("dashboard", "jobs", "migrate"):
        env = compose["services"][name]["environment"]
        assert str(env["COOKIE_SECURE"]).lower() == "true", name
        assert env["LOGIN_SOURCE_HEADER"] == "X-Forwarded-For"
    assert compose["services"]["dashboard"]["environment"]["SMTP_SECURITY"] == "${SMTP_SECURITY:-starttls}"


def test_p15_secrets_are_required_not_defaulted():
    text = (ROOT / "docker-compose.yml").read_text()
    for name in REQUIRED_SECRETS:
        uses = re.findall(r"\$\{" + name + r"([^}]*)\}", text)
        assert uses, f"{name} not used"
        assert all(u.startswith(":?") for u in uses), f"{name} must be required everywhere: {uses}"
    assert "COOKIE_SECURE:-false" not in text
