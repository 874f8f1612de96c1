"""The loop over the entries of one file, shared by both input formats: entries that are not
objects are skipped with a reason, entries applied before (same digest) are reused, the others
parsed; progress is reported every `every` entries."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Sequence

from core.imports.records import ParseResult, ProgressCallback, SkippedEntry, TherapistRecord, entry_digest
from core.imports.values import _kind_de


def collect_entries(
    result: ParseResult,
    entries: Sequence[Any],
    parse_one: Callable[[Mapping[str, Any], int], TherapistRecord | SkippedEntry],
    *,
    reuse: Optional[Callable[[str], bool]],
    progress: Optional[ProgressCallback],
    every: int,
) -> ParseResult:
    total = len(entries)
    for i, entry in enumerate(entries):
        position = i + 1
        if not isinstance(entry, dict):
            result.skipped.append(SkippedEntry(position, f"Eintrag {position} ist {_kind_de(entry, nominative=True)} statt eines Objekts."))
        else:
            digest = entry_digest(entry)
            if reuse is not None and reuse(digest):
                result.reused.append(digest)
            else:
                record = parse_one(entry, position)
                if isinstance(record, SkippedEntry):
                    result.skipped.append(record)
                else:
                    record.entry_hash = digest
                    result.records.append(record)
        if progress is not None and position % every == 0:
            progress(position, total)
    if progress is not None:
        progress(total, total)
    return result
