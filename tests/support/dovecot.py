"""A private Dovecot IMAP server for the tests: 127.0.0.1 only, free ports, a throw-away
configuration, passwd-file user and maildir in a temporary folder; stopped afterwards.

Never the machine's system service: the server gets its own `base_dir`, `instance_name`, log
file and listeners. Run as root it drops privileges to Debian's `dovecot`/`dovenull` users
(the mail itself belongs to `dovecot`, because Dovecot refuses mail access as uid 0); run as an
ordinary user everything runs as that user.

`.ci/run` installs Debian's `dovecot-imapd`. With CI=true a missing Dovecot fails the tests;
elsewhere they are skipped with a message saying how to install it.

Usage (pytest fixture `dovecot` below, or the class directly, e.g. in bench/):

    with DovecotServer.start() as server:
        server.append("INBOX", raw_bytes)
        client = imapclient.IMAPClient("127.0.0.1", port=server.port, ssl=False)
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

import pytest

DOVECOT_BIN = "/usr/sbin/dovecot"
INSTALL_HINT = "Dovecot fehlt: apt-get install dovecot-imapd (Debian); .ci/run installiert es."


class DovecotUnavailable(RuntimeError):
    pass


def dovecot_binary() -> Optional[str]:
    found = shutil.which("dovecot") or (DOVECOT_BIN if os.path.exists(DOVECOT_BIN) else None)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, timeout_s: float, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.settimeout(2)
                if s.recv(64).startswith(b"* OK"):
                    return
        except OSError:
            time.sleep(0.05)
    text = log.read_text(errors="replace") if log.exists() else "(kein Log)"
    raise DovecotUnavailable(f"Dovecot antwortet nicht auf Port {port}:\n{text[-3000:]}")


def _make_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


@dataclass
class DovecotServer:
    root: Path
    port: int  # plain IMAP (STARTTLS offered when TLS is on)
    tls_port: Optional[int]  # implicit TLS (IMAPS), None without TLS
    user: str
    password: str
    process: subprocess.Popen
    config: Path
    cert: Optional[Path] = None
    mail_uid: int = field(default_factory=os.getuid)
    mail_gid: int = field(default_factory=os.getgid)

    # ------------------------------------------------------------------ life cycle

    @classmethod
    def start(cls, *, tls: bool = True, user: str = "inbox@example.de", password: str = "geheim-imap",
              timeout_s: float = 20) -> "DovecotServer":
        binary = dovecot_binary()
        if not binary:
            raise DovecotUnavailable(INSTALL_HINT)
        # Not under pytest's 0700 tmp folder: the unprivileged login processes need to reach it.
        root = Path(tempfile.mkdtemp(prefix="test-dovecot-"))
        os.chmod(root, 0o755)
        is_root = os.geteuid() == 0
        if is_root:
            try:
                internal = pwd.getpwnam("dovecot")
                login = pwd.getpwnam("dovenull")
            except KeyError as exc:
                shutil.rmtree(root, ignore_errors=True)
                raise DovecotUnavailable(f"Benutzer dovecot/dovenull fehlen ({exc}); {INSTALL_HINT}") from None
            internal_user, login_user = internal.pw_name, login.pw_name
            mail_uid, mail_gid = internal.pw_uid, internal.pw_gid
        else:
            me = pwd.getpwuid(os.getuid())
            internal_user = login_user = me.pw_name
            mail_uid, mail_gid = me.pw_uid, me.pw_gid
        home = root / "home"
        home.mkdir()
        if is_root:
            os.chown(home, mail_uid, mail_gid)
        users = root / "users"
        users.write_text(f"{user}:{{PLAIN}}{password}:{mail_uid}:{mail_gid}::{home}/%u::\n")
        os.chmod(users, 0o644)
        port = free_port()
        tls_port = free_port() if tls else None
        cert = key = None
        if tls:
            cert, key = _make_certificate(root)
            os.chmod(key, 0o644)
        log = root / "dovecot.log"
        config = root / "dovecot.conf"
        ssl_lines = (f"ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}\n" if tls else "ssl = no\n")
        imaps = (
            f"  inet_listener imaps {{\n    address = 127.0.0.1\n    port = {tls_port}\n    ssl = yes\n  }}\n"
            if tls else "  inet_listener imaps {\n    port = 0\n  }\n"
        )
        config.write_text(
            f"""# throw-away test configuration (tests/support/dovecot.py)
instance_name = test-dovecot-{uuid.uuid4().hex[:8]}
base_dir = {root}/run
state_dir = {root}/state
listen = 127.0.0.1
protocols = imap
log_path = {log}
info_log_path = {log}
default_internal_user = {internal_user}
default_internal_group = {_group_name(internal_user)}
default_login_user = {login_user}
first_valid_uid = {min(mail_uid, 500) if mail_uid else 1}
auth_mechanisms = plain login
disable_plaintext_auth = no
auth_cache_size = 0
auth_failure_delay = 0
login_trusted_networks = 127.0.0.0/8
{ssl_lines}
mail_location = maildir:~/Maildir
mail_fsync = never
mail_privileged_group =
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {users}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {users}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
{imaps}  process_min_avail = 0
}}
service imap {{
  process_limit = 32
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
protocol imap {{
  mail_max_userip_connections = 100
}}
"""
        )
        (root / "run").mkdir()
        (root / "state").mkdir()
        process = subprocess.Popen(
            [binary, "-F", "-c", str(config)],
            stdout=subprocess.DEVNULL, stderr=open(root / "stderr.log", "wb"),
        )
        server = cls(root=root, port=port, tls_port=tls_port, user=user, password=password, process=process,
                     config=config, cert=cert, mail_uid=mail_uid, mail_gid=mail_gid)
        try:
            _wait_for_port(port, timeout_s, log if log.exists() else root / "stderr.log")
        except BaseException:
            server.stop()
            raise
        return server

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "DovecotServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ helpers

    def client_ssl_context(self) -> ssl.SSLContext:
        """Trusts exactly this server's self-signed certificate."""
        if self.cert is None:
            raise RuntimeError("server started without TLS")
        return ssl.create_default_context(cafile=str(self.cert))

    def connect(self):
        """A logged-in imapclient connection (plain, loopback) for test set-up and checks."""
        import imapclient

        client = imapclient.IMAPClient("127.0.0.1", port=self.port, ssl=False, timeout=10)
        client.login(self.user, self.password)
        return client

    def append(self, folder: str, *messages: bytes) -> None:
        self.append_many(folder, messages)

    def append_many(self, folder: str, messages: Iterable[bytes]) -> None:
        client = self.connect()
        try:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            for raw in messages:
                client.append(folder, raw)
        finally:
            client.logout()

    def uids(self, folder: str) -> list[int]:
        client = self.connect()
        try:
            if not client.folder_exists(folder):
                return []
            client.select_folder(folder, readonly=True)
            return sorted(client.search("ALL"))
        finally:
            client.logout()

    def messages(self, folder: str) -> list[bytes]:
        client = self.connect()
        try:
            if not client.folder_exists(folder):
                return []
            client.select_folder(folder, readonly=True)
            uids = sorted(client.search("ALL"))
            if not uids:
                return []
            data = client.fetch(uids, ["BODY.PEEK[]"])
            return [data[u][b"BODY[]"] for u in uids]
        finally:
            client.logout()

    def clear(self, *folders: str) -> None:
        client = self.connect()
        try:
            for folder in folders:
                if not client.folder_exists(folder):
                    continue
                client.select_folder(folder)
                uids = client.search("ALL")
                if uids:
                    client.delete_messages(uids)
                    client.expunge()
                client.close_folder()
        finally:
            client.logout()


def _group_name(user: str) -> str:
    import grp

    return grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name


def start_or_skip(**kwargs) -> DovecotServer:
    """Start a server; without Dovecot skip the test, or fail it with CI=true."""
    try:
        return DovecotServer.start(**kwargs)
    except DovecotUnavailable as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true, aber kein Dovecot: {exc}", pytrace=False)
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def dovecot_server():
    """One private Dovecot (plain + STARTTLS on `port`, implicit TLS on `tls_port`) per test
    module. Import it into the test module: `from tests.support.dovecot import dovecot_server`."""
    server = start_or_skip()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def dovecot(dovecot_server):
    """The module's server with INBOX and the usual processed folder emptied for each test."""
    dovecot_server.clear("INBOX", "Verarbeitet")
    return dovecot_server
