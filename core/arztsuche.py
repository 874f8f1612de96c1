"""The 116117 contract (DESIGN §14): ``parse_response(data) -> list[TherapistRecord]``.

The parser lives in `core.imports.parse`; this module keeps the stable name that pages, jobs
and acceptance checks call."""

from core.imports.parse import (  # noqa: F401 - re-exported contract
    ImportFormatError,
    ParseResult,
    TherapistRecord,
    load_json,
    parse_bytes,
    parse_document,
    parse_response,
)

__all__ = [
    "ImportFormatError",
    "ParseResult",
    "TherapistRecord",
    "load_json",
    "parse_bytes",
    "parse_document",
    "parse_response",
]
