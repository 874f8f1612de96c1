"""What reading a received mail yields: the parsed message, attachments, bounce and auto-reply facts, or a rejection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Optional, Union


MAX_MESSAGE_BYTES = 25 * 1024 * 1024
MAX_HEADER_CHARS = 998 * 4
MAX_TEXT_CHARS = 200_000
MAX_PARTS = 500
MAX_DEPTH = 25
MAX_REFERENCES = 100
MAX_ID_CHARS = 250


class Kind:
    reply = "reply"
    bounce = "bounce"
    auto_reply = "auto_reply"
    other = "other"


@dataclass(frozen=True)
class AttachmentInfo:
    name: str
    content_type: str
    size: int  # bytes after transfer decoding


@dataclass(frozen=True)
class BounceInfo:
    recipient: str  # the failed address (lower case), "" when the report does not say
    status: str  # enhanced status code "5.1.1", else the SMTP code "550", else ""
    diagnostic: str  # what the receiving server said, one line
    original_message_id: str  # Message-ID of the mail that bounced, "" when not included
    permanent: bool  # False for "delayed" notices (4.x.x): the mail may still arrive
    format: str  # "dsn" | "qmail" | "exim" | "postfix" | "text"


@dataclass(frozen=True)
class AutoReplyInfo:
    return_date: Optional[date]  # first day the sender says they are back
    reason: str  # which sign made it an auto-reply (header or subject)


@dataclass(frozen=True)
class ParsedMessage:
    sha256: str
    size: int
    message_id: str
    in_reply_to: str
    references: tuple[str, ...]
    from_address: str
    from_name: str
    to: tuple[str, ...]
    subject: str
    date: Optional[datetime]  # aware, UTC
    text: str  # the whole text body
    body: str  # text without the quoted history
    quoted: str  # the quoted history ("" when none was found)
    html: str  # sanitised HTML ("" when the mail had none)
    attachments: tuple[AttachmentInfo, ...]
    kind: str
    inquiry_refs: tuple[str, ...]  # "A253", in subject order, no duplicates
    bounce: Optional[BounceInfo] = None
    auto_reply: Optional[AutoReplyInfo] = None
    warnings: tuple[str, ...] = ()

    @property
    def thread_ids(self) -> tuple[str, ...]:
        """Message-IDs this mail answers: In-Reply-To first, then References newest first
        (and the bounced mail's id for bounces)."""
        ids: list[str] = []
        for mid in (self.in_reply_to, *reversed(self.references),
                    self.bounce.original_message_id if self.bounce else ""):
            if mid and mid not in ids:
                ids.append(mid)
        return tuple(ids)


@dataclass(frozen=True)
class RejectedMessage:
    sha256: str
    size: int
    reason: str
    message_id: str = ""
    from_address: str = ""
    subject: str = ""


ParseResult = Union[ParsedMessage, RejectedMessage]


