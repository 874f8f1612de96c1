"""Removing contact data from free text for roles that may not see it (pure).

Server replies ("550 5.1.1 <praxis@example.de>: Recipient address rejected") and similar
texts quote e-mail addresses; viewers get the same sentence with the address replaced.
"""

from __future__ import annotations

import re

HIDDEN_EMAIL = "[E-Mail-Adresse verborgen]"

# Generous on purpose: anything that looks like local@domain, with or without <>, also
# percent- or quote-encoded local parts as mail servers echo them.
_EMAIL = re.compile(r"<?[^\s<>@,;:\"()\[\]]+@[^\s<>@,;:\"()\[\]]+>?", re.ASCII)


def redact_contacts(text: str | None) -> str | None:
    """`text` with every e-mail address replaced by a placeholder. (Phone numbers are not
    guessed from free text: dates and references would be caught too; texts that carry one
    are built from fields and hide it there.)"""
    if not text:
        return text
    return _EMAIL.sub(HIDDEN_EMAIL, text)
