"""Free text from users in SQL and files: LIKE searches with escaped wildcards, control
characters that no database column accepts, and spreadsheet formula cells.

One home for each, used by every list search (registry, map, outbox), every validator
and every CSV export/import (docs/architecture.md, "where is what").
"""

from __future__ import annotations

from typing import Any, Optional

from sqlalchemy import ColumnElement, or_

LIKE_ESCAPE = "\\"


def escape_like(term: str) -> str:
    """`term` for a LIKE pattern: `%`, `_` and the escape character match themselves."""
    return term.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2).replace("%", LIKE_ESCAPE + "%").replace("_", LIKE_ESCAPE + "_")


def _case_variants(term: str) -> list[str]:
    """Case variants so that umlauts match on SQLite too (its LIKE folds ASCII only)."""
    return list(dict.fromkeys([term, term.lower(), term[:1].upper() + term[1:].lower(), term.upper()]))


def contains_ci(column: Any, term: str) -> ColumnElement[bool]:
    """`column` contains `term` literally, ignoring case (also for ä/ö/ü on SQLite)."""
    return or_(*[column.ilike(f"%{escape_like(t)}%", escape=LIKE_ESCAPE) for t in _case_variants(term)])


def starts_with(column: Any, term: str) -> ColumnElement[bool]:
    """`column` starts with `term` literally (wildcards escaped)."""
    return column.like(f"{escape_like(term)}%", escape=LIKE_ESCAPE)


# --------------------------------------------------------------------------- control characters

# NUL is refused by PostgreSQL in every text value ("A string literal cannot contain NUL");
# the other C0 controls except tab/LF/CR have no business in a name, note or search either.
_FORBIDDEN = frozenset(chr(c) for c in range(32) if chr(c) not in "\t\n\r") | {"\x7f"}

CONTROL_MESSAGE = "enthält ein unzulässiges Steuerzeichen (z. B. ein Null-Byte) – bitte den Text neu eingeben."


def has_control_chars(value: Any) -> bool:
    """True when a text (or any text in a list) holds a NUL or another forbidden control character."""
    if isinstance(value, str):
        return any(ch in _FORBIDDEN for ch in value)
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(has_control_chars(x) for x in value)
    return False


def control_chars_message(what: str) -> str:
    """"Name enthält ein unzulässiges Steuerzeichen …"."""
    return f"{what} {CONTROL_MESSAGE}"


# --------------------------------------------------------------------------- spreadsheet formulas

# OWASP "CSV injection": a cell starting with one of these is run as a formula by
# Excel/LibreOffice. Such cells are written with a leading apostrophe, and the import
# takes the apostrophe away again, so a round trip keeps the text as it was.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
FORMULA_GUARD = "'"


def _is_formula(cell: str) -> bool:
    """Starts like a formula once any leading apostrophes (earlier guards) are set aside."""
    return cell.lstrip(FORMULA_GUARD).startswith(FORMULA_STARTS)


def neutralise_formula(cell: str) -> str:
    """A cell a spreadsheet will show as text: `=1+1` → `'=1+1`."""
    return FORMULA_GUARD + cell if _is_formula(cell) else cell


def restore_formula(cell: Optional[str]) -> Optional[str]:
    """The inverse of `neutralise_formula` (for the import of an exported file)."""
    if cell and cell.startswith(FORMULA_GUARD) and _is_formula(cell[1:]):
        return cell[1:]
    return cell
