"""Small date facts shared by every capability (docs/architecture.md, "Where is what")."""

from __future__ import annotations

from datetime import date
from typing import Optional


def age_on(birth_date: Optional[date], today: date) -> Optional[int]:
    """Whole years on `today` (a birthday on 29 Feb counts on 1 Mar in other years);
    None without a birth date."""
    if birth_date is None:
        return None
    return today.year - birth_date.year - ((today.month, today.day) < (birth_date.month, birth_date.day))
