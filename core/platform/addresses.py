"""E-mail addresses: the one normalisation and its SQL twin, side by side.

The normalised address is the key of a practice (therapists sharing it are one practice:
one open inquiry, cooling together, the practice owner) and of a mailbox (the weekly mail
limit counts mails to the same normalised recipient address, whichever therapist record
they are for). Stored addresses are validated ASCII (core.platform.validation), so Python's
and SQL's lower() agree.
"""

from __future__ import annotations

from itertools import product
from typing import Optional

import sqlalchemy as sa
from sqlalchemy import and_, func

from core.platform.models import Therapist


def normalise_email(email: Optional[str]) -> Optional[str]:
    """The key of an address: trimmed, lower case; None when there is none."""
    value = (email or "").strip().lower()
    return value or None


def email_key(column=Therapist.email):
    """SQL twin of normalise_email for an address column (default: the therapist's)."""
    return func.lower(func.trim(column))


def therapists_with_email(key: str):
    """Therapists whose normalised e-mail is `key`. Besides the exact test, the stored
    address must start with a case variant of the key's first three characters: index
    ranges on ix_therapists_email instead of a scan of every address (stored addresses are
    validated, so they carry no leading blanks)."""
    head = key[:3]
    variants = {"".join(chars) for chars in product(*[sorted({c.lower(), c.upper()}) for c in head])}
    ranges = [
        and_(Therapist.email >= v, Therapist.email < v[:-1] + chr(ord(v[-1]) + 1)) for v in sorted(variants) if v
    ]
    return and_(sa.or_(*ranges), email_key() == key) if ranges else email_key() == key
