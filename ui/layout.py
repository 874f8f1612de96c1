"""Page frame pieces: header (title + one line of help), state badges, error boundary."""

from __future__ import annotations

import logging
import uuid
from contextlib import contextmanager
from typing import Iterator

import streamlit as st
from sqlalchemy import exc as sa_exc

from core.platform.db import ConcurrentChange
from core.platform.permissions import PermissionDenied
from core.platform.validation import ValidationErrors
from core.platform.vocab import Labeled

log = logging.getLogger("dashboard")


def header(title: str, help_line: str) -> None:
    st.title(title)
    st.caption(help_line)


def badge(state: Labeled) -> None:
    st.badge(state.label, color=state.color)


def badge_md(state: Labeled) -> str:
    """Inline markdown badge for use inside st.markdown text."""
    return f":{state.color}-badge[{state.label}]"


def database_unreachable(exc: BaseException) -> bool:
    """The database is down or the connection broke (a restart, a network blip)."""
    return isinstance(exc, sa_exc.OperationalError) or (
        isinstance(exc, sa_exc.DBAPIError) and bool(getattr(exc, "connection_invalidated", False))
    )


def unexpected_error(exc: BaseException) -> None:
    ref = uuid.uuid4().hex[:8].upper()
    if database_unreachable(exc):
        log.warning("Datenbank nicht erreichbar, Referenz %s: %s", ref, type(exc).__name__)
        st.error(
            "Die Datenbank ist gerade nicht erreichbar. Ihre Eingaben sind nicht verloren – bitte in einem "
            f"Moment noch einmal versuchen. (Referenz **{ref}**)"
        )
        return
    log.error("Unerwarteter Fehler, Referenz %s", ref, exc_info=exc)
    st.error(
        f"Es ist ein unerwarteter Fehler aufgetreten. Bitte versuchen Sie es erneut; "
        f"bleibt der Fehler, nennen Sie der Administration die Referenz **{ref}**."
    )


@contextmanager
def guarded() -> Iterator[None]:
    """Turn refusals into German messages and anything unexpected into a reference. A unit
    of work that lost a race every time it ran says so ("Gleichzeitige Änderung – bitte noch
    einmal speichern"); the widgets keep what the coordinator typed."""
    try:
        yield
    except PermissionDenied as exc:
        st.error(str(exc))
    except ValidationErrors as exc:  # e.g. a text longer than its column (core.platform.lengths)
        st.error(str(exc))
    except ConcurrentChange as exc:
        st.warning(str(exc), icon=":material/sync_problem:")
    except Exception as exc:  # noqa: BLE001 - last line of defence, logged with reference
        unexpected_error(exc)
