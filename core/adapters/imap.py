"""The mailbox the inbox job reads, behind a small interface (imapclient underneath).

    with open_mailbox(ImapConfig(...)) as box:
        uids = box.new_uids()                      # what is waiting in the folder
        for msg in box.fetch(uids):                # raw bytes, \\Seen is not set (BODY.PEEK)
            ...store it, commit...
        box.move_to_processed([msg.uid, ...])     # only after the database commit

- Security: `ssl` (implicit TLS, port 993), `starttls` (port 143, upgraded before login; a
  server without STARTTLS is refused rather than sending the password in clear) or `plain`
  (tests and local relays only).
- Moving uses MOVE (RFC 6851) when the server has it, else COPY + \\Deleted + UID EXPUNGE
  (UIDPLUS), else COPY + \\Deleted + EXPUNGE. The processed folder is created when missing.
- Every failure is raised as `ImapError` with a German text naming what went wrong.

Nothing here knows the database; core.inbox does the bookkeeping.
"""

from __future__ import annotations

import socket
import ssl
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Iterator, Optional, Sequence

import imapclient
from imapclient.exceptions import IMAPClientError, LoginError

SECURITY_MODES = ("ssl", "starttls", "plain")


@dataclass(frozen=True)
class ImapConfig:
    host: str
    port: int
    security: str = "ssl"  # ssl | starttls | plain
    user: str = ""
    password: str = ""
    folder: str = "INBOX"
    processed_folder: str = "Verarbeitet"
    timeout_s: float = 30
    ssl_context: Optional[ssl.SSLContext] = None

    @property
    def description(self) -> str:
        return f"IMAP {self.user}@{self.host}:{self.port} ({self.security}), Ordner {self.folder}"


@dataclass(frozen=True)
class FetchedMessage:
    uid: int
    raw: bytes
    size: int  # RFC822.SIZE as the server reports it
    internal_date: Optional[datetime]
    truncated: bool = False  # True: larger than max_bytes, only the header was fetched


class ImapError(Exception):
    def __init__(self, text: str, *, temporary: bool = True):
        super().__init__(text)
        self.text = text
        self.temporary = temporary


def _describe(exc: BaseException, config: ImapConfig) -> ImapError:
    where = f"{config.host}:{config.port}"
    if isinstance(exc, ImapError):
        return exc
    if isinstance(exc, LoginError):
        return ImapError(f"Anmeldung am IMAP-Server {where} fehlgeschlagen (Benutzer {config.user!r}): {exc}",
                         temporary=False)
    if isinstance(exc, ConnectionRefusedError):
        return ImapError(f"IMAP-Server {where} nicht erreichbar (Verbindung abgelehnt).")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return ImapError(f"Zeitüberschreitung beim IMAP-Server {where}.")
    if isinstance(exc, ssl.SSLError):
        return ImapError(f"TLS-Fehler beim IMAP-Server {where}: {exc}")
    if isinstance(exc, socket.gaierror):
        return ImapError(f"IMAP-Server {config.host!r} unbekannt (DNS): {exc}")
    if isinstance(exc, IMAPClientError):
        return ImapError(f"IMAP-Fehler bei {where}: {exc}")
    if isinstance(exc, OSError):
        return ImapError(f"Verbindung zum IMAP-Server {where} gestört: {exc}")
    return ImapError(f"IMAP-Fehler bei {where}: {type(exc).__name__}: {exc}")


def _chunks(items: Sequence[int], size: int) -> Iterator[list[int]]:
    for i in range(0, len(items), size):
        yield list(items[i:i + size])


class Mailbox:
    """One logged-in connection with the source folder selected."""

    def __init__(self, client: imapclient.IMAPClient, config: ImapConfig, *, use_move: Optional[bool] = None):
        self._client = client
        self.config = config
        caps = {c.upper() for c in client.capabilities()}
        self.can_move = (b"MOVE" in caps) if use_move is None else use_move
        self.has_uidplus = b"UIDPLUS" in caps
        self._select()

    def _select(self) -> None:
        info = self._client.select_folder(self.config.folder)
        self.uidvalidity = int(info.get(b"UIDVALIDITY", 0) or 0)

    # ------------------------------------------------------------------ reading

    def new_uids(self, *, limit: Optional[int] = None) -> list[int]:
        """UIDs of the messages waiting in the folder (oldest first). Everything that is
        processed leaves the folder, so what is here is new; \\Deleted ones are skipped."""
        try:
            uids = sorted(int(u) for u in self._client.search(["NOT", "DELETED"]))
        except BaseException as exc:  # noqa: BLE001
            raise _describe(exc, self.config) from exc
        return uids[:limit] if limit else uids

    def fetch(self, uids: Iterable[int], *, max_bytes: Optional[int] = None, batch: int = 50) -> Iterator[FetchedMessage]:
        """Raw messages, in UID order, without setting \\Seen. A message above `max_bytes`
        comes with its header only (`truncated=True`)."""
        uid_list = sorted(set(int(u) for u in uids))
        for chunk in _chunks(uid_list, batch):
            try:
                meta = self._client.fetch(chunk, ["RFC822.SIZE", "INTERNALDATE"])
                small = [u for u in chunk if u in meta and (max_bytes is None or int(meta[u].get(b"RFC822.SIZE", 0)) <= max_bytes)]
                large = [u for u in chunk if u in meta and u not in small]
                bodies = self._client.fetch(small, ["BODY.PEEK[]"]) if small else {}
                heads = self._client.fetch(large, ["BODY.PEEK[HEADER]"]) if large else {}
            except BaseException as exc:  # noqa: BLE001
                raise _describe(exc, self.config) from exc
            for uid in chunk:
                if uid not in meta:
                    continue  # expunged meanwhile by another client
                size = int(meta[uid].get(b"RFC822.SIZE", 0) or 0)
                when = meta[uid].get(b"INTERNALDATE")
                if uid in bodies:
                    raw = bodies[uid].get(b"BODY[]") or b""
                    yield FetchedMessage(uid, bytes(raw), size, when)
                elif uid in heads:
                    raw = heads[uid].get(b"BODY[HEADER]") or b""
                    yield FetchedMessage(uid, bytes(raw), size, when, truncated=True)

    # ------------------------------------------------------------------ moving

    def ensure_folder(self, name: str) -> None:
        try:
            if not self._client.folder_exists(name):
                self._client.create_folder(name)
                try:
                    self._client.subscribe_folder(name)
                except IMAPClientError:
                    pass  # subscribing is a courtesy for mail clients
        except BaseException as exc:  # noqa: BLE001
            if isinstance(exc, IMAPClientError) and self._client.folder_exists(name):
                return  # created meanwhile by a second runner
            raise _describe(exc, self.config) from exc

    def move_to_processed(self, uids: Iterable[int]) -> None:
        """Move to the processed folder (created when missing). Idempotent: UIDs that are no
        longer in the folder are ignored."""
        uid_list = sorted(set(int(u) for u in uids))
        if not uid_list:
            return
        self.ensure_folder(self.config.processed_folder)
        target = self.config.processed_folder
        try:
            for chunk in _chunks(uid_list, 200):
                if self.can_move:
                    self._client.move(chunk, target)
                    continue
                self._client.copy(chunk, target)
                self._client.add_flags(chunk, [imapclient.DELETED], silent=True)
                if self.has_uidplus:
                    self._client.uid_expunge(chunk)
                else:
                    self._client.expunge()
        except BaseException as exc:  # noqa: BLE001
            raise _describe(exc, self.config) from exc

    def close(self) -> None:
        try:
            self._client.logout()
        except (IMAPClientError, OSError):
            try:
                self._client.shutdown()
            except (IMAPClientError, OSError):
                pass


def _login(config: ImapConfig) -> imapclient.IMAPClient:
    if config.security not in SECURITY_MODES:
        raise ImapError(f"IMAP-Sicherheit {config.security!r} unbekannt (erlaubt: {', '.join(SECURITY_MODES)}).",
                        temporary=False)
    context = config.ssl_context or ssl.create_default_context()
    client = imapclient.IMAPClient(
        config.host, port=config.port, ssl=config.security == "ssl",
        ssl_context=context if config.security == "ssl" else None, timeout=config.timeout_s,
    )
    try:
        if config.security == "starttls":
            if not client.has_capability("STARTTLS"):
                raise ImapError(f"IMAP-Server {config.host}:{config.port} bietet kein STARTTLS an; "
                                "das Passwort wird nicht unverschlüsselt gesendet.", temporary=False)
            client.starttls(context)
        client.login(config.user, config.password)
    except BaseException:
        try:
            client.shutdown()
        except (IMAPClientError, OSError):
            pass
        raise
    return client


@contextmanager
def open_mailbox(config: ImapConfig, *, use_move: Optional[bool] = None) -> Iterator[Mailbox]:
    """A logged-in connection with the source folder selected; logs out afterwards."""
    try:
        client = _login(config)
    except BaseException as exc:  # noqa: BLE001
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise _describe(exc, config) from exc
    try:
        box = Mailbox(client, config, use_move=use_move)
    except BaseException as exc:  # noqa: BLE001 - e.g. the folder does not exist
        try:
            client.shutdown()
        except (IMAPClientError, OSError):
            pass
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise _describe(exc, config) from exc
    try:
        yield box
    finally:
        box.close()
