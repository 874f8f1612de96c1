"""Log lines carry ids, never personal data: a last line of defence for every logger.

Services log ids only (an outbox id, a Message-ID, an inquiry number). What they cannot
control are texts from below: PostgreSQL's error DETAIL repeats the failing row ("Failing
row contains (…, Maria, Muster, …)", "Key (email)=(…) already exists"), SQLAlchemy appends
statement parameters unless the engine hides them (ours do: core.platform.db), a mail
server's reply quotes the recipient's address. `install()` puts a log-record factory in place
that scrubs those parts from the message and the traceback of every record of the process,
whichever handler later writes it. Every entry point installs it through core.bootstrap.
"""

from __future__ import annotations

import logging
import re
import threading

from core.platform.redaction import redact_contacts

HIDDEN = "[verborgen]"

_DETAIL = re.compile(r"(?m)^(\s*(?:DETAIL|DETAIL:|Detail|HINT|CONTEXT):?\s*).+$")
_FAILING_ROW = re.compile(r"Failing row contains \(.*?\)(?=\.?\s*$|\.?\n)", re.S | re.M)
_KEY_VALUE = re.compile(r"Key \((?P<cols>[^)]*)\)=\((?P<vals>.*?)\)(?= already exists| is not present| conflicts)")
_PARAMETERS = re.compile(r"\[parameters: .*?\](?=\s*(?:\n|\(Background|$))", re.S)

_lock = threading.Lock()
_installed = False
_formatter = logging.Formatter()


def scrub(text: str) -> str:
    """The text without database row values, statement parameters or e-mail addresses."""
    if not text:
        return text
    result = _FAILING_ROW.sub("Failing row contains (" + HIDDEN + ")", text)
    result = _KEY_VALUE.sub(lambda m: f"Key ({m.group('cols')})=({HIDDEN})", result)
    result = _DETAIL.sub(lambda m: m.group(1) + HIDDEN, result)
    result = _PARAMETERS.sub("[parameters: " + HIDDEN + "]", result)
    return redact_contacts(result) or result


def scrub_record(record: logging.LogRecord) -> logging.LogRecord:
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a broken format string: leave it to logging's own error path
        return record
    clean = scrub(message)
    if clean != message or record.args:
        record.msg, record.args = clean, None
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        record.exc_text = scrub(_formatter.formatException(record.exc_info))
    elif record.exc_text:
        record.exc_text = scrub(record.exc_text)
    return record


def install() -> None:
    """Scrub every log record of this process at creation (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args, **kwargs) -> logging.LogRecord:
            return scrub_record(previous(*args, **kwargs))

        logging.setLogRecordFactory(factory)
        _installed = True
