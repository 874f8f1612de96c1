"""The cooling rule (Abkühlungsphase), its one home: after any answer a therapist's
practice gets no new inquiry before `next_contact_at`; a date on or before today has passed.

The pure predicate and its SQL twin stand side by side so the screens, the matching rules,
the map and the reports can't disagree (docs/architecture.md, "Where is what").
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Optional

from sqlalchemy import and_

from core.platform.models import Therapist


def is_cooling(next_contact_at: Optional[date], today: date) -> bool:
    """True while the therapist may not be asked again."""
    return next_contact_at is not None and next_contact_at > today


def cooling_clause(today: date, column=Therapist.next_contact_at):
    """SQL twin of `is_cooling` (NULL never cools)."""
    return and_(column.is_not(None), column > today)


def cooling_until(answer_day: date, weeks: int) -> date:
    """The first day a therapist may be asked again after answering on `answer_day`."""
    return answer_day + timedelta(weeks=weeks)


def later_cooling(current: Optional[date], new: date) -> date:
    """Cooling never gets shorter by a new answer."""
    return new if current is None or new > current else current
