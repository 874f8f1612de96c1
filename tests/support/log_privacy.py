"""The suite-wide check of issue 12's acceptance: no log line written during the test run
contains a test patient's name or e-mail address.

- Every Patient the tests write through the ORM (services, seeds, CSV imports, AppTest pages)
  is noted when it is flushed (mapper events), with its name and e-mail.
- Every log record the process creates is collected through the log-record factory (so no
  handler set-up by a test, pytest or Streamlit can hide one), already formatted: message
  plus traceback. Our own loggers (core, jobs, ui) are opened down to DEBUG.
- Logs of other processes (the e2e server, job-runner subprocesses) are handed in with
  `check_external_log`.
At the end of the session every line is checked against every noted patient.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from sqlalchemy import event

from core.platform.models import Patient

MIN_NEEDLE = 6  # shorter strings ("Anna") would match ordinary words


@dataclass
class LogPrivacyCollector:
    needles: set[str] = field(default_factory=set)
    lines: dict[str, str] = field(default_factory=dict)  # text -> where (each distinct text once)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    installed: bool = False

    # ------------------------------------------------------------------ patients

    def note_patient(self, first_name: str | None, last_name: str | None, email: str | None) -> None:
        first, last = (first_name or "").strip(), (last_name or "").strip()
        found = set()
        if first and last:
            found |= {f"{first} {last}", f"{last}, {first}", f"{last} {first}"}
        if email and "@" in email:
            found.add(email.strip())
        with self._lock:
            self.needles |= {n.lower() for n in found if len(n) >= MIN_NEEDLE}

    def _on_patient(self, _mapper, _connection, target: Patient) -> None:
        self.note_patient(target.first_name, target.last_name, target.email)

    # ------------------------------------------------------------------ records

    def _collect(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001
            text = str(record.msg)
        if record.exc_text:
            text += "\n" + record.exc_text
        elif record.exc_info and record.exc_info[0] is not None:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        with self._lock:
            self.lines.setdefault(text[:20_000], record.name)

    def install(self) -> None:
        if self.installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args, **kwargs):
            record = previous(*args, **kwargs)
            self._collect(record)
            return record

        logging.setLogRecordFactory(factory)
        for name in ("core", "jobs", "ui"):
            logging.getLogger(name).setLevel(logging.DEBUG)
        event.listen(Patient, "after_insert", self._on_patient)
        event.listen(Patient, "after_update", self._on_patient)
        self.installed = True

    def add_external(self, where: str, text: str) -> None:
        with self._lock:
            for line in text.splitlines():
                self.lines.setdefault(line, where)

    # ------------------------------------------------------------------ the check

    def violations(self, needles: set[str] | None = None, lines=None) -> list[str]:
        needles = {n.lower() for n in (needles if needles is not None else self.needles)}
        found = []
        if lines is None:
            with self._lock:
                lines = [(where, text) for text, where in self.lines.items()]
        for where, text in lines:
            low = text.lower()
            for needle in needles:
                if needle in low:
                    found.append(f"{where}: …{needle}… in {text[:300]!r}")
                    break
        return found


COLLECTOR = LogPrivacyCollector()


def check_external_log(where: str, text: str, patients: list[tuple[str, str, str | None]]) -> list[str]:
    """Check another process's log against that process's patients (first, last, email)."""
    local = LogPrivacyCollector()
    for first, last, email in patients:
        local.note_patient(first, last, email)
    COLLECTOR.add_external(where, text)
    return local.violations(local.needles, [(where, line) for line in text.splitlines()])
