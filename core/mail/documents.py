"""Therapist documents (PDF forms) attached to inquiry mails."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from sqlalchemy import select
from sqlalchemy.orm import Session
from core.platform import audit
from core.platform.models import OutboxEmail, Therapist, TherapistDocument
from core.platform.permissions import Actor, Permission
from core.platform.vocab import EmailState
from core.mail.rules import MAX_ATTACHMENT_BYTES, OutboxError


# =========================================================================== therapist documents (PDF forms)


@dataclass(frozen=True)
class DocumentRow:
    id: int
    therapist_id: int
    filename: str
    size_bytes: int
    uploaded_at: datetime


def clean_filename(name: str) -> str:
    """The last path component, no control characters, umlauts kept, ending in .pdf."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable() and ch not in '<>:"|?*').strip().strip(".")
    if not base:
        base = "Formular"
    if not base.lower().endswith(".pdf"):
        base += ".pdf"
    if len(base) > 200:
        base = base[:196] + ".pdf"
    return base


def add_therapist_document(
    session: Session, actor: Actor, therapist_id: int, filename: str, content: bytes, now: datetime
) -> DocumentRow:
    """Store a PDF form of a therapist (≤ 10 MB, PDF only)."""
    actor.require(Permission.edit)
    if session.get(Therapist, therapist_id) is None:
        raise OutboxError("Diese Therapeut:in gibt es nicht (mehr).")
    if not content:
        raise OutboxError("Datei: die Datei ist leer.")
    if len(content) > MAX_ATTACHMENT_BYTES:
        raise OutboxError("Datei: höchstens 10 MB; bitte verkleinern Sie das PDF.")
    if not content.lstrip()[:5] == b"%PDF-":
        raise OutboxError("Datei: nur PDF-Dateien sind erlaubt.")
    doc = TherapistDocument(
        therapist_id=therapist_id, filename=clean_filename(filename), content=content, size_bytes=len(content), uploaded_at=now
    )
    session.add(doc)
    session.flush()
    audit.record(session, actor, "document.add", "therapist_document", doc.id, {"therapist_id": therapist_id, "filename": doc.filename}, now=now)
    return DocumentRow(doc.id, doc.therapist_id, doc.filename, doc.size_bytes, doc.uploaded_at)


def list_therapist_documents(session: Session, actor: Actor, therapist_id: int) -> list[DocumentRow]:
    actor.require(Permission.view)
    rows = session.execute(
        select(
            TherapistDocument.id, TherapistDocument.therapist_id, TherapistDocument.filename,
            TherapistDocument.size_bytes, TherapistDocument.uploaded_at,
        ).where(TherapistDocument.therapist_id == therapist_id).order_by(TherapistDocument.id)
    ).all()
    return [DocumentRow(*r) for r in rows]


def delete_therapist_document(session: Session, actor: Actor, document_id: int, now: datetime) -> None:
    """Remove a form; refused while an unsent mail still wants to attach it."""
    actor.require(Permission.edit)
    doc = session.get(TherapistDocument, document_id)
    if doc is None:
        raise OutboxError("Dieses Formular gibt es nicht (mehr).")
    pending = session.scalars(
        select(OutboxEmail.attachment_document_ids).where(
            OutboxEmail.state.in_([EmailState.draft, EmailState.queued, EmailState.sending, EmailState.failed]),
            OutboxEmail.patient_id.is_not(None),
        )
    ).all()
    if any(document_id in (ids or []) for ids in pending):
        raise OutboxError("Das Formular hängt an einer noch nicht gesendeten E-Mail; stornieren Sie diese zuerst.")
    audit.record(session, actor, "document.delete", "therapist_document", doc.id, {"filename": doc.filename}, now=now)
    session.delete(doc)
    session.flush()


