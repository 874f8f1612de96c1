"""Headers of a received mail: decoding, addresses, Message-IDs and dates, tolerant of broken input."""

from __future__ import annotations

import codecs
import re
from datetime import datetime, timezone
from email.header import decode_header
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime
from typing import Optional
from core.inbox.message import MAX_HEADER_CHARS, MAX_ID_CHARS, MAX_REFERENCES


# --------------------------------------------------------------------------- headers


def _defects_warning(defects) -> str:
    names = sorted({type(d).__name__ for d in defects})
    return "MIME-Fehler in der Nachricht: " + ", ".join(names[:5]) + ("…" if len(names) > 5 else "")


def _clip(value: str, limit: int, label: str, warnings: list[str]) -> str:
    if len(value) > limit:
        warnings.append(f"{label} zu lang, gekürzt.")
        return value[:limit]
    return value


def _bytes_to_text(data: bytes, charset: Optional[str], warnings: list[str], where: str) -> str:
    """Decode with the declared charset; unknown or wrong charsets fall back to UTF-8,
    then Windows-1252 (never fails)."""
    if charset:
        cs = charset.strip().strip('"').lower()
        if cs in ("unknown-8bit", "x-unknown", "8bit", "default", "us-ascii", "ascii"):
            cs = ""
        if cs:
            try:
                codecs.lookup(cs)
            except (LookupError, ValueError):
                warnings.append(f"Unbekannter Zeichensatz {charset[:40]!r} ({where}); als UTF-8 gelesen.")
                cs = ""
        if cs:
            try:
                return data.decode(cs)
            except (UnicodeDecodeError, ValueError, LookupError):
                warnings.append(f"Text passt nicht zum Zeichensatz {charset[:40]!r} ({where}).")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if charset is None or charset == "":
        warnings.append(f"Zeichensatz nicht angegeben, als Windows-1252 gelesen ({where}).")
    return data.decode("cp1252", "replace")


def _raw_header(msg: Message, name: str) -> Optional[str]:
    lname = name.lower()
    for key, value in msg.raw_items():
        if key.lower() == lname:
            return value if isinstance(value, str) else str(value)
    return None


def _header(msg: Message, name: str, warnings: list[str]) -> str:
    """The first `name` header as text: RFC 2047 words decoded, raw 8-bit bytes read as
    UTF-8 (else Windows-1252), folded lines joined, length bounded."""
    try:
        raw = _raw_header(msg, name)
    except Exception:  # noqa: BLE001
        raw = None
    if raw is None:
        return ""
    raw = raw[: MAX_HEADER_CHARS * 4]
    if any("\udc80" <= ch <= "\udcff" for ch in raw):
        raw = _bytes_to_text(raw.encode("ascii", "surrogateescape"), None, [], name)
    raw = re.sub(r"\r?\n[ \t]+", " ", raw).replace("\r", " ").replace("\n", " ")
    try:
        chunks = decode_header(raw)
    except Exception:  # noqa: BLE001 - broken encoded words: keep the raw text
        warnings.append(f"Kopfzeile {name} falsch kodiert; unverändert übernommen.")
        chunks = [(raw, None)]
    out: list[str] = []
    for chunk, charset in chunks:
        if isinstance(chunk, bytes):
            out.append(_bytes_to_text(chunk, charset, warnings, f"Kopfzeile {name}"))
        else:
            out.append(chunk)
    text = "".join(out)
    text = "".join(ch if ch.isprintable() or ch == " " else " " for ch in text)
    return " ".join(text.split())[:MAX_HEADER_CHARS]


def _addresses(value: str) -> list[tuple[str, str]]:
    if not value:
        return []
    try:
        pairs = getaddresses([value])
    except Exception:  # noqa: BLE001
        pairs = []
    result = []
    for name, addr in pairs:
        addr = addr.strip().strip("<>").lower()
        if "@" in addr and " " not in addr and len(addr) <= 254:
            result.append((name.strip().strip('"'), addr))
    if not result:
        m = _EMAIL.search(value)
        if m:
            result.append(("", m.group(0).lower()))
    return result


_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


def _first_address(value: str) -> tuple[str, str]:
    found = _addresses(value)
    return found[0] if found else ("", "")


_ID = re.compile(r"<([^<>\s]{1,%d})>" % (MAX_ID_CHARS * 4))


def _norm_id(token: str) -> str:
    token = token.strip()
    return f"<{token}>" if token else ""


def _first_id(value: str, warnings: list[str]) -> str:
    if not value:
        return ""
    m = _ID.search(value)
    if m:
        mid = _norm_id(m.group(1))
    else:
        bare = value.strip().split()[0] if value.strip() else ""
        mid = _norm_id(bare.strip("<>")) if bare else ""
    if len(mid) > MAX_ID_CHARS:
        warnings.append("Message-ID zu lang, gekürzt.")
        mid = mid[: MAX_ID_CHARS - 1] + ">"
    return mid


def _all_ids(value: str) -> tuple[str, ...]:
    ids = []
    for m in _ID.finditer(value or ""):
        mid = _norm_id(m.group(1))
        if len(mid) <= MAX_ID_CHARS and mid not in ids:
            ids.append(mid)
    return tuple(ids[-MAX_REFERENCES:])


def _date(value: str, warnings: list[str]) -> Optional[datetime]:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except Exception:  # noqa: BLE001 - (TypeError, ValueError, IndexError, OverflowError) in practice
        parsed = None
    if parsed is None:
        warnings.append("Datum unlesbar.")
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        return parsed.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        warnings.append("Datum außerhalb des gültigen Bereichs.")
        return None


