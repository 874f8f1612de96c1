"""The 116117 contract (DESIGN §14): ``parse_response(data) -> list[TherapistRecord]``.

The parser lives in `core.imports.parse`; this module keeps the stable name that pages, jobs
and acceptance checks call."""

from core.imports.parse import load_json, parse_bytes, parse_document, parse_response
from core.imports.records import ImportFormatError, ParseResult, TherapistRecord

__all__ = [
    "ImportFormatError",
    "ParseResult",
    "TherapistRecord",
    "load_json",
    "parse_bytes",
    "parse_document",
    "parse_response",
]
