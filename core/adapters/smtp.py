"""E-mail delivery behind a small interface: SMTP relay, a folder of .eml files, or the log.

- `build_message` turns a rendered mail into a MIME message, written once straight to its
  wire bytes: multipart/alternative (text + HTML, UTF-8, quoted-printable so 7-bit relays
  are fine) inside multipart/mixed when there are attachments; attachment names with
  umlauts are encoded per RFC 2231. The SMTP transport hands those bytes over as they are.
- A `MailSender` opens one connection (`with sender.connect() as transport:`) and the caller
  sends a whole batch over it with `transport.send(message)`.
- Every failure is raised as `SendError`: temporary (4xx, refused connection, timeout, a
  dropped connection) or permanent (5xx), with the server's own text, and whether the
  connection is still usable for the rest of the batch. `classify_smtp_error` is the rule.

Nothing here knows the outbox table; core.outbox does the bookkeeping.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import smtplib
import socket
import ssl
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path
from typing import Iterator, Optional, Protocol, Union
from urllib.parse import quote

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- message


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    mime_type: str = "application/pdf"


@dataclass(frozen=True)
class OutgoingMail:
    from_address: str
    from_name: str
    to_address: str
    to_name: str
    subject: str
    text: str
    html: str
    message_id: str
    date: datetime
    reply_to: Optional[str] = None
    attachments: tuple[Attachment, ...] = field(default_factory=tuple)


def new_message_id(sender_address: str) -> str:
    """`<random@sender-domain>`; stored on the outbox row before the first attempt, so a
    retry or a resend after a crash carries the same id (receivers can de-duplicate)."""
    domain = sender_address.rsplit("@", 1)[-1].strip() or "localhost"
    return make_msgid(idstring=uuid.uuid4().hex[:12], domain=domain)


# Characters that end or split a display name in an address header (RFC 5322 "specials"),
# plus every control character. Python's folding of a long name can drop the quotes around
# it, and some clients decode encoded words before parsing, so a name carrying "," or
# "<addr>" could add a recipient. Names are people's and practices' names: they never need these.
_NAME_SPECIALS = re.compile(r'[\x00-\x1f\x7f<>()\[\]:;@\\,"]+')
MAX_DISPLAY_NAME = 78


def safe_display_name(name: str) -> str:
    """A display name that cannot add a recipient or a header, however it is folded."""
    cleaned = " ".join(_NAME_SPECIALS.sub(" ", name or "").split())
    return cleaned[:MAX_DISPLAY_NAME].strip()


def _checked_address(addr: str) -> str:
    """One plain ASCII address or ValueError (stored addresses are validated; this is the
    last guard before a header line)."""
    addr = (addr or "").strip()
    if (
        any(ch in addr for ch in "\r\n,;<>\"() ") or addr.count("@") != 1 or not addr.isascii()
        or not addr.isprintable() or addr.startswith("@") or addr.endswith("@")
    ):
        raise ValueError("Empfängeradresse ist keine einzelne gültige E-Mail-Adresse.")
    return addr


# --------------------------------------------------------------------------- the wire format
#
# A message is written once, straight to the bytes that go over the wire (RFC 5322 / MIME,
# 7-bit: quoted-printable text parts, base64 attachments, RFC 2047 encoded words, RFC 2231
# file names, CRLF). EmailMessage's header registry and generator took about 1.5 ms per mail
# (and send_message wrote the message a second time); this takes about 0.1 ms. The result is
# read back with both of the standard library's parsers in tests/unit/test_mail_headers.py.

_CRLF = "\r\n"
_MAX_LINE = 78
_TOKEN_NAME = re.compile(r"[A-Za-z0-9 !#$%&'*+\-.^_`{|}~]+")  # a file name fine inside quotes
_FOLD_AT = re.compile(r"(?<=[^ ])(?= )")  # between a word and the spaces before the next one
_MIME_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+")


def _header_text(value: str, header_name: str) -> str:
    """An unstructured header value (Subject): as is when short and ASCII, else folded and,
    for non-ASCII text, as encoded words."""
    if any(ch in value for ch in "\r\n\x00"):
        raise ValueError(f"{header_name} enthält einen Zeilenumbruch.")
    if not value.isascii():
        return _encoded_words(value)
    # fold before a space where the line would grow past 78 (a single longer word stays long)
    out, width = [], len(header_name) + 2
    for chunk in _FOLD_AT.split(value):
        if out and width + len(chunk) > _MAX_LINE:
            out.append(_CRLF)
            width = 0
        out.append(chunk)
        width += len(chunk)
    return "".join(out)


def _encoded_words(text: str) -> str:
    """RFC 2047 base64 encoded words of at most 39 bytes each (64 characters: with "Subject: "
    or a continuation's blank every line stays under 78), folded between the words; a
    character's bytes are never split."""
    chunks: list[str] = []
    start, size = 0, 0
    for i, ch in enumerate(text):
        n = len(ch.encode("utf-8"))
        if size + n > 39:
            chunks.append(text[start:i])
            start, size = i, 0
        size += n
    chunks.append(text[start:])
    return (_CRLF + " ").join(
        "=?utf-8?b?" + binascii.b2a_base64(c.encode("utf-8"), newline=False).decode("ascii") + "?=" for c in chunks if c
    )


def _address_header(name: str, addr: str, header_name: str) -> str:
    addr = _checked_address(addr)
    name = safe_display_name(name)
    if not name:
        return addr
    shown = formataddr((name, addr)) if name.isascii() else f"{_encoded_words(name)} <{addr}>"
    if len(header_name) + 2 + len(shown.rsplit(_CRLF, 1)[-1]) > _MAX_LINE:  # fold before the address
        head, _, _ = shown.rpartition(f" <{addr}>")
        shown = f"{head}{_CRLF} <{addr}>"
    return shown


def _text_part(content: str, subtype: str) -> list[str]:
    data = content.replace("\r\n", "\n").replace("\r", "\n").replace("\n", _CRLF).encode("utf-8")
    return [
        f'Content-Type: text/{subtype}; charset="utf-8"',
        "Content-Transfer-Encoding: quoted-printable",
        "",
        binascii.b2a_qp(data, istext=True).decode("ascii"),
    ]


def _file_name_param(filename: str) -> str:
    """filename="…" for a plain ASCII name, else RFC 2231 (utf-8, percent-encoded), cut
    into numbered pieces when long."""
    if _TOKEN_NAME.fullmatch(filename) and len(filename) <= 60:
        return f'filename="{filename}"'
    encoded = quote(filename, safe="")
    if len(encoded) <= 60:
        return f"filename*=utf-8''{encoded}"
    pieces = [encoded[i:i + 50] for i in range(0, len(encoded), 50)]  # " filename*12*=" + 50 + ";" < 78
    # never cut a %XX escape in two
    for i in range(len(pieces) - 1):
        cut = pieces[i].rfind("%", len(pieces[i]) - 2)
        if cut != -1:
            pieces[i + 1] = pieces[i][cut:] + pieces[i + 1]
            pieces[i] = pieces[i][:cut]
    return (";" + _CRLF + " ").join(
        f"filename*{n}*=utf-8''{p}" if n == 0 else f"filename*{n}*={p}" for n, p in enumerate(pieces)
    )


def _attachment_part(att: Attachment) -> list[str]:
    maintype, _, subtype = att.mime_type.partition("/")
    mime_type = f"{maintype}/{subtype or 'octet-stream'}"
    if not _MIME_TYPE.fullmatch(mime_type):
        raise ValueError(f"Ungültiger Anhangstyp: {att.mime_type}")
    # lines of 76 characters, written by the C encoder (a 200 KB form is 2,700 lines)
    body = base64.encodebytes(att.content).decode("ascii").rstrip("\n").replace("\n", _CRLF)
    return [
        f"Content-Type: {mime_type}",
        "Content-Transfer-Encoding: base64",
        "Content-Disposition: attachment;" + _CRLF + " " + _file_name_param(att.filename or "Anhang"),
        "",
        body,
    ]


def _boundary() -> str:
    # "=_" never occurs in quoted-printable or base64 text, so the boundary cannot collide
    return "=_" + uuid.uuid4().hex


def _multipart(subtype: str, parts: list[list[str]]) -> tuple[str, list[str]]:
    boundary = _boundary()
    lines: list[str] = [""]
    for part in parts:
        lines.append(f"--{boundary}")
        lines.extend(part)
    lines.append(f"--{boundary}--")
    lines.append("")
    return f'Content-Type: multipart/{subtype};{_CRLF} boundary="{boundary}"', lines


@dataclass(frozen=True)
class BuiltMessage:
    """A message written once: the bytes that go over the wire and its envelope. Read like
    an EmailMessage (`msg["To"]`, `msg.iter_attachments()`) it parses those bytes, which
    only tests and the outbox preview do."""

    raw: bytes
    sender: str
    recipients: tuple[str, ...]
    message_id: str

    def as_bytes(self, policy=None) -> bytes:  # noqa: ARG002 - already in wire form
        return self.raw

    @cached_property
    def parsed(self) -> EmailMessage:
        return BytesParser(policy=policy.default).parsebytes(self.raw)

    def __getitem__(self, name: str):
        return self.parsed[name]

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.parsed, name)


def build_message(mail: OutgoingMail) -> BuiltMessage:
    """The wire form of a rendered mail: multipart/alternative (text + HTML) inside
    multipart/mixed when there are attachments. ValueError when an address, the subject or
    the Message-ID would break a header."""
    if any(ch in mail.message_id for ch in "\r\n\x00 ") or not mail.message_id:
        raise ValueError("Ungültige Message-ID.")
    headers = [
        "From: " + _address_header(mail.from_name, mail.from_address, "From"),
        "To: " + _address_header(mail.to_name, mail.to_address, "To"),
    ]
    if mail.reply_to:
        headers.append("Reply-To: " + _checked_address(mail.reply_to))
    headers += [
        "Subject: " + _header_text(mail.subject, "Subject"),
        "Date: " + format_datetime(mail.date),
        "Message-ID: " + mail.message_id,
        "MIME-Version: 1.0",
    ]
    alternative = _multipart("alternative", [_text_part(mail.text, "plain"), _text_part(mail.html, "html")])
    if mail.attachments:
        inner = [alternative[0], *alternative[1]]
        content_type, body = _multipart("mixed", [inner, *(_attachment_part(a) for a in mail.attachments)])
    else:
        content_type, body = alternative
    raw = _CRLF.join([*headers, content_type, *body]).encode("ascii")
    return BuiltMessage(
        raw=raw, sender=_checked_address(mail.from_address), recipients=(_checked_address(mail.to_address),),
        message_id=mail.message_id,
    )


# --------------------------------------------------------------------------- errors


class SendError(Exception):
    """A mail was not accepted. `text` is what the server (or the network) said."""

    def __init__(self, text: str, *, temporary: bool, code: Optional[int] = None, connection_lost: bool = False):
        super().__init__(text)
        self.text = text
        self.temporary = temporary
        self.code = code
        self.connection_lost = connection_lost  # True: the rest of the batch needs a new connection

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"SendError({self.text!r}, temporary={self.temporary}, code={self.code})"


def is_temporary_code(code: Optional[int]) -> bool:
    """SMTP reply classes: 4xx transient, 5xx permanent; anything else we cannot judge
    (no code, odd codes) is retried, because retrying is the safe side."""
    if code is None:
        return True
    return not 500 <= code <= 599


def _decode(raw) -> str:
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "replace")
    return str(raw)


def _reply_text(code: Optional[int], message) -> str:
    text = " ".join(_decode(message).split())
    return f"{code} {text}".strip() if code is not None else text


def classify_smtp_error(exc: BaseException) -> SendError:
    """Map what smtplib / the socket raised to a SendError (pure; used by the SMTP transport)."""
    if isinstance(exc, SendError):
        return exc
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, message = next(iter(exc.recipients.values()), (None, b"Empfaenger abgelehnt"))
        return SendError(_reply_text(code, message), temporary=is_temporary_code(code), code=code)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return SendError(f"Verbindung zum Mailserver getrennt: {exc}", temporary=True, connection_lost=True)
    if isinstance(exc, smtplib.SMTPResponseException):  # sender refused, data error, helo, auth, connect
        code = exc.smtp_code
        lost = isinstance(exc, (smtplib.SMTPConnectError, smtplib.SMTPHeloError, smtplib.SMTPAuthenticationError))
        temporary = True if lost else is_temporary_code(code)
        return SendError(_reply_text(code, exc.smtp_error), temporary=temporary, code=code, connection_lost=lost)
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return SendError("Zeitüberschreitung beim Mailserver", temporary=True, connection_lost=True)
    if isinstance(exc, ConnectionRefusedError):
        return SendError(f"Mailserver nicht erreichbar (Verbindung abgelehnt): {exc}", temporary=True, connection_lost=True)
    if isinstance(exc, ssl.SSLError):
        return SendError(f"TLS-Fehler beim Mailserver: {exc}", temporary=True, connection_lost=True)
    if isinstance(exc, (OSError, smtplib.SMTPException)):
        return SendError(f"Mailserver-Fehler: {type(exc).__name__}: {exc}", temporary=True, connection_lost=True)
    return SendError(f"{type(exc).__name__}: {exc}", temporary=True, connection_lost=True)


# --------------------------------------------------------------------------- senders


Message = Union[BuiltMessage, EmailMessage]


class MailTransport(Protocol):
    def send(self, message: Message) -> None:
        """Hand one message over; raises SendError when it is not accepted."""


class MailSender(Protocol):
    description: str

    def connect(self):  # -> ContextManager[MailTransport]
        """One connection for a batch; raises SendError when it cannot be opened."""


class _SmtpTransport:
    def __init__(self, smtp: smtplib.SMTP):
        self._smtp = smtp

    def send(self, message: Message) -> None:
        try:
            if isinstance(message, BuiltMessage):  # already in wire form: no second writing
                self._smtp.sendmail(message.sender, list(message.recipients), message.raw)
            else:
                self._smtp.send_message(message)
        except BaseException as exc:  # noqa: BLE001 - every failure becomes a SendError
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            raise classify_smtp_error(exc) from exc


@dataclass
class SmtpSender:
    host: str
    port: int
    security: str = "starttls"  # starttls | ssl | plain
    user: str = ""
    password: str = ""
    timeout_s: float = 30
    local_hostname: Optional[str] = None
    ssl_context: Optional[ssl.SSLContext] = None

    @property
    def description(self) -> str:
        return f"SMTP {self.host}:{self.port} ({self.security})"

    def _open(self) -> smtplib.SMTP:
        helo = self.local_hostname or socket.gethostname() or "localhost"  # no DNS lookup (getfqdn)
        context = self.ssl_context or ssl.create_default_context()
        if self.security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                self.host, self.port, local_hostname=helo, timeout=self.timeout_s, context=context
            )
        else:
            smtp = smtplib.SMTP(self.host, self.port, local_hostname=helo, timeout=self.timeout_s)
        try:
            smtp.ehlo()
            if self.security == "starttls":
                smtp.starttls(context=context)
                smtp.ehlo()
            if self.user:
                smtp.login(self.user, self.password)
        except BaseException:
            _quietly_close(smtp)
            raise
        return smtp

    @contextmanager
    def connect(self) -> Iterator[MailTransport]:
        try:
            smtp = self._open()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001
            err = classify_smtp_error(exc)
            err.connection_lost = True
            err.temporary = True  # the connection failed, not this mail
            raise err from exc
        try:
            yield _SmtpTransport(smtp)
        finally:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                _quietly_close(smtp)


def _quietly_close(smtp: smtplib.SMTP) -> None:
    try:
        smtp.close()
    except OSError:
        pass


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class _FolderTransport:
    def __init__(self, folder: Path):
        self._folder = folder

    def send(self, message: Message) -> None:
        msg_id = _UNSAFE.sub("_", _message_id(message).strip("<>"))[:80] or uuid.uuid4().hex
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        target = self._folder / f"{stamp}-{msg_id}.eml"
        tmp = target.with_suffix(".tmp")
        try:
            tmp.write_bytes(message.as_bytes(policy=policy.SMTP))
            os.replace(tmp, target)  # readers never see half a file
        except OSError as exc:
            raise SendError(f"Mailordner nicht beschreibbar: {exc}", temporary=True, connection_lost=True) from exc


@dataclass
class FolderSender:
    """The embedded default: every mail becomes an .eml file you can open (and the outbox
    page lists). Nothing leaves the machine."""

    folder: Path

    @property
    def description(self) -> str:
        return f"Mailordner {self.folder}"

    @contextmanager
    def connect(self) -> Iterator[MailTransport]:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SendError(f"Mailordner nicht anlegbar: {exc}", temporary=True, connection_lost=True) from exc
        yield _FolderTransport(self.folder)


def _message_id(message: Message) -> str:
    if isinstance(message, BuiltMessage):
        return message.message_id
    return str(message.get("Message-ID", ""))


class _LogTransport:
    def send(self, message: Message) -> None:
        # Only the Message-ID: recipient, name and subject are personal data (a patient's
        # name, a practice's address), the body may hold health data. The outbox row with
        # this Message-ID tells an authorised user the rest.
        log.info("E-Mail (nur protokolliert, nicht versendet) %s", _message_id(message))


class LogSender:
    description = "nur Protokoll (kein Versand)"

    @contextmanager
    def connect(self) -> Iterator[MailTransport]:
        yield _LogTransport()


def make_sender(settings) -> MailSender:
    """The sender SMTP_MODE asks for (folder | smtp | log)."""
    if settings.SMTP_MODE == "smtp":
        return SmtpSender(
            host=settings.SMTP_HOST,
            port=settings.SMTP_PORT,
            security=settings.SMTP_SECURITY,
            user=settings.SMTP_USER,
            password=settings.SMTP_PASSWORD,
            timeout_s=settings.SMTP_TIMEOUT_S,
        )
    if settings.SMTP_MODE == "log":
        return LogSender()
    return FolderSender(settings.path(settings.MAIL_FOLDER))


# --------------------------------------------------------------------------- reading the folder


@dataclass(frozen=True)
class FolderMessage:
    filename: str
    subject: str
    to: str
    date: Optional[datetime]
    message_id: str
    text: str
    html: str
    attachments: tuple[str, ...]
    raw: bytes


def parse_eml(raw: bytes, filename: str = "") -> FolderMessage:
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    text_part = msg.get_body(preferencelist=("plain",))
    html_part = msg.get_body(preferencelist=("html",))
    date_header = msg["Date"]
    return FolderMessage(
        filename=filename,
        subject=str(msg["Subject"] or ""),
        to=str(msg["To"] or ""),
        date=date_header.datetime if date_header is not None and getattr(date_header, "datetime", None) else None,
        message_id=str(msg["Message-ID"] or ""),
        text=text_part.get_content().replace("\r\n", "\n") if text_part is not None else "",
        html=html_part.get_content().replace("\r\n", "\n") if html_part is not None else "",
        attachments=tuple(part.get_filename() or "" for part in msg.iter_attachments()),
        raw=raw,
    )


def list_folder_messages(folder: Path, *, limit: int = 50) -> list[FolderMessage]:
    """The newest .eml files of the mail folder, newest first (file names start with a time stamp)."""
    if not folder.is_dir():
        return []
    files = sorted((p for p in folder.glob("*.eml") if p.is_file()), key=lambda p: p.name, reverse=True)[:limit]
    result = []
    for path in files:
        try:
            result.append(parse_eml(path.read_bytes(), path.name))
        except (OSError, ValueError):  # a file removed meanwhile or not an e-mail: skip it
            continue
    return result


def count_folder_messages(folder: Path) -> int:
    return sum(1 for _ in folder.glob("*.eml")) if folder.is_dir() else 0
