"""Loading and locking inquiry rows; the inquiry error type and reference."""

from __future__ import annotations

from datetime import date, datetime
from typing import Mapping, Optional, Sequence
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.exc import StaleDataError
from core.mail import templates as mt
from core.matching import eligibility
from core.platform.config import Settings, get_settings
from core.platform.formatting import BERLIN, count_of
from core.platform.models import Inquiry, InquiryPatient, Search, Therapist


CALL_HOUR = 10  # until calls are planned in phone hours: the next weekday at 10:00


class InquiryError(ValueError):
    """An inquiry action that is not possible; German message, optionally with the reasons
    per search id (and for the therapist) that made a re-check fail."""

    def __init__(
        self, message: str, *, reasons: Optional[Mapping[int, list[str]]] = None,
        therapist_reasons: Sequence[str] = (),
    ):
        super().__init__(message)
        self.reasons = dict(reasons or {})
        self.therapist_reasons = list(therapist_reasons)


def reference(inquiry_id: int) -> str:
    """How an inquiry is named to people (A123), the same as in the e-mails."""
    return mt.inquiry_reference(inquiry_id)


def _settings(settings: Optional[Settings]) -> Settings:
    return settings if settings is not None else get_settings()


def _local_day(moment: datetime) -> date:
    return moment.astimezone(BERLIN).date()


# =========================================================================== locks and loading


def _practice_ids(session: Session, therapist: Therapist) -> list[int]:
    """The therapist and every practice member (same normalised e-mail), in id order; the
    rows an inquiry action locks first (core.platform.locks: therapists → inquiries → searches)."""
    return eligibility.practice_member_ids(session, therapist.id, therapist.email)


def _fresh_searches(session: Session, ids: Sequence[int]) -> dict[int, Search]:
    """Search rows locked (FOR NO KEY UPDATE, in id order) and re-read, not from the
    identity map. Callers lock therapists and inquiries before (core.platform.locks)."""
    ids = sorted(set(ids))
    if not ids:
        return {}
    rows = session.scalars(
        select(Search).where(Search.id.in_(ids)).order_by(Search.id).with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    ).all()
    return {s.id: s for s in rows}


def _load_inquiry(session: Session, inquiry_id: int, *, lock: bool = False) -> Inquiry:
    stmt = select(Inquiry).where(Inquiry.id == inquiry_id).options(selectinload(Inquiry.patients))
    if lock:
        stmt = stmt.with_for_update(of=Inquiry, key_share=True).execution_options(populate_existing=True)
    inquiry = session.scalars(stmt).one_or_none()
    if inquiry is None:
        raise InquiryError("Diese Anfrage gibt es nicht (mehr).")
    return inquiry


def _flush(session: Session) -> None:
    try:
        session.flush()
    except StaleDataError:
        raise InquiryError(
            "Die Anfrage oder eine Platzsuche wurde inzwischen von jemand anderem geändert – bitte neu laden."
        ) from None


def _active_members(inquiry: Inquiry) -> list[InquiryPatient]:
    return sorted((m for m in inquiry.patients if m.withdrawn_at is None), key=lambda m: m.position)


def _renumber(inquiry: Inquiry) -> None:
    for pos, m in enumerate(sorted(inquiry.patients, key=lambda m: m.position), start=1):
        m.position = pos


def _reasons_message(check: eligibility.CheckResult) -> str:
    parts = list(check.therapist_reasons)
    bad = {sid: r for sid, r in check.search_reasons.items() if r}
    if bad:
        verb = "passt" if len(bad) == 1 else "passen"
        parts.append(f"{count_of(len(bad), 'patient')} {verb} nicht (mehr): " + " ".join(r[0] for r in bad.values()))
    return "Die Anfrage lässt sich so nicht erstellen. " + " ".join(parts)


