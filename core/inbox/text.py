"""The text of a reply: normalising, splitting off the quoted history, inquiry references in the subject."""

from __future__ import annotations

import re


# --------------------------------------------------------------------------- text


def _normalise_text(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = "".join(ch for ch in text if ch in "\n\t" or ch.isprintable() or ch == " ")
    lines = [line.rstrip() for line in text.split("\n")]
    return "\n".join(lines).strip("\n")


_ATTRIBUTION = re.compile(
    r"^(?:"
    r"am\s.{1,200}?\sschrieb\s?.{0,200}?:"  # Am 23.11.2026 um 09:30 schrieb X:
    r"|on\s.{1,200}?\swrote:"  # On Mon, 23 Nov 2026 ... wrote:
    r"|.{1,120}\sschrieb\sam\s.{1,80}:"  # X schrieb am 23.11.2026:
    r"|.{1,120}\s(?:schrieb|wrote):"
    r")\s*$",
    re.IGNORECASE,
)
_SEPARATOR = re.compile(
    r"^\s*(?:-{2,}\s*(?:original(?:\s+message|nachricht)?|ursprüngliche\s+nachricht|urspr\.?\s+nachricht|"
    r"weitergeleitete\s+nachricht|forwarded\s+message)\s*-{2,}|_{10,}|-{10,})\s*$",
    re.IGNORECASE,
)
_OUTLOOK_FROM = re.compile(r"^\s*\*?(?:von|from)\s*:\*?\s+\S", re.IGNORECASE)
_OUTLOOK_NEXT = re.compile(r"^\s*\*?(?:gesendet|sent|datum|date|an|to|betreff|subject)\s*:", re.IGNORECASE)


def split_quoted(text: str) -> tuple[str, str]:
    """(new text, quoted history). Top posting (the usual case) splits at the first
    attribution line ("Am … schrieb …:", "On … wrote:"), an Outlook header block
    ("Von:/Gesendet:") or a separator ("-----Ursprüngliche Nachricht-----"); a run of
    "> " lines counts as history too. When the sender answered *between* or *below* the
    quoted lines, nothing is split (the answer must stay visible)."""
    if not text:
        return "", ""
    lines = text.split("\n")
    cut = None
    head_end = 0  # last line of the attribution (it may wrap over two lines)
    hard = False  # separators / Outlook blocks: everything below is history
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            continue
        if _SEPARATOR.match(stripped):
            if _looks_like_history(lines, i + 1):
                cut, hard = i, True
                break
            continue
        if _OUTLOOK_FROM.match(stripped) and any(_OUTLOOK_NEXT.match(n) for n in lines[i + 1:i + 4]):
            cut, hard = i, True
            break
        joined = stripped if len(stripped) > 2 else ""
        if i + 1 < len(lines) and not stripped.endswith(":") and lines[i + 1].strip().endswith(":"):
            joined = stripped + " " + lines[i + 1].strip()  # attribution wrapped over two lines
        if joined and _ATTRIBUTION.match(stripped):
            cut = head_end = i
            break
        if joined and _ATTRIBUTION.match(joined) and _next_is_quote(lines, i + 2):
            cut, head_end = i, i + 1
            break
        if stripped.startswith(">"):
            cut = head_end = i
            break
    if cut is None:
        return text.strip("\n"), ""
    if not hard and _answer_below(lines, head_end):
        return text.strip("\n"), ""
    body = "\n".join(lines[:cut]).strip("\n")
    quoted = "\n".join(lines[cut:]).strip("\n")
    if not body.strip():
        return text.strip("\n"), ""  # nothing but history: show it all
    return body, quoted


def _next_is_quote(lines: list[str], start: int) -> bool:
    for line in lines[start:start + 3]:
        if line.strip():
            return line.lstrip().startswith(">")
    return False


def _looks_like_history(lines: list[str], start: int) -> bool:
    return any(line.strip() for line in lines[start:])


def _answer_below(lines: list[str], cut: int) -> bool:
    """True when non-quoted text follows the quoted block (inline or bottom posting)."""
    in_quote = False
    for line in lines[cut + 1:]:
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith(">"):
            in_quote = True
            continue
        if in_quote and not _SIGNATURE.match(stripped):
            return True
        if not in_quote:
            return True  # text right after an attribution without ">" lines
    return False


_SIGNATURE = re.compile(r"^(?:--\s*|__+)$")


# --------------------------------------------------------------------------- references


_INQUIRY_REF = re.compile(r"(?<![A-Za-z0-9])A(\d{1,9})(?:-\d{1,2})?(?![A-Za-z0-9])")
_REPLY_PREFIX = re.compile(r"^\s*(?:\[[^\]]{0,40}\]\s*)?(?:re|aw|antw|antwort|sv|vs|wg|fw|fwd)\s*(?:\[\d+\])?\s*:", re.IGNORECASE)


def inquiry_references(subject: str) -> tuple[str, ...]:
    """Inquiry identifiers ("A253") named in a subject, first seen first; a patient
    reference "A253-2" counts as its inquiry."""
    refs: list[str] = []
    for m in _INQUIRY_REF.finditer(subject or ""):
        ref = f"A{int(m.group(1))}"
        if ref not in refs:
            refs.append(ref)
    return tuple(refs)


