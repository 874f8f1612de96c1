"""E-mail addresses: the one normalisation and its SQL twin, side by side.

The normalised address is the key of a practice (therapists sharing it are one practice:
one open inquiry, cooling together, the practice owner) and of a mailbox (the weekly mail
limit counts mails to the same normalised recipient address, whichever therapist record
they are for). Stored addresses are validated ASCII (core.platform.validation), so Python's
and SQL's lower() agree.
"""

from __future__ import annotations

from typing import Optional

from sqlalchemy import func

from core.platform.models import Therapist


def normalise_email(email: Optional[str]) -> Optional[str]:
    """The key of an address: trimmed, lower case; None when there is none."""
    value = (email or "").strip().lower()
    return value or None


def email_key(column=Therapist.email):
    """SQL twin of normalise_email for an address column (default: the therapist's)."""
    return func.lower(func.trim(column))


# Keys per lookup `email_key().in_(keys)`: few enough that PostgreSQL probes
# ix_therapists_email_key instead of hashing every stored address (measured: it switches at
# ~300 keys with 40,000 therapists). Look up more keys in chunks of this size.
KEYS_PER_LOOKUP = 200


def therapists_with_email(key: str):
    """Therapists whose normalised e-mail is `key`: one probe of ix_therapists_email_key,
    the index on exactly this expression (migration 0012)."""
    return email_key() == key
