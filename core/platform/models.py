"""SQLAlchemy 2 typed ORM models for every entity of the domain (docs/architecture.md, "Domain model").

The schema itself is created only by Alembic migrations (migrations/); tests check that
these models and the migrations agree. Enum values are English snake_case (core.vocab);
timestamps are stored as UTC and come back timezone-aware.

Delete rules are deliberate: history (searches, inquiries, e-mails, calls, audit) is
never cascaded away by deleting a person; only pure child rows of a parent that is
itself disposable (inquiry membership of a draft, changes of an import run, login
sessions of a user) cascade.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from enum import Enum as PyEnum
from typing import Any, Optional

import sqlalchemy as sa
from sqlalchemy import JSON, ForeignKey, Index, MetaData, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from core.platform import vocab

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out; stored as UTC on every database."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Optional[datetime], dialect) -> Optional[datetime]:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; pass an aware datetime (UTC or Europe/Berlin)")
        value = value.astimezone(timezone.utc)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Optional[datetime], dialect) -> Optional[datetime]:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


JSONType = JSON().with_variant(JSONB(), "postgresql")


def enum_type(enum_cls: type[PyEnum], name: str) -> sa.Enum:
    """A portable enum: VARCHAR plus a CHECK constraint listing the English values."""
    return sa.Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        validate_strings=True,
        values_callable=lambda cls: [m.value for m in cls],
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


# --------------------------------------------------------------------------- users and audit


class User(TimestampMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    email: Mapped[Optional[str]] = mapped_column(String(255))
    password_hash: Mapped[Optional[str]] = mapped_column(String(255))
    role: Mapped[vocab.Role] = mapped_column(enum_type(vocab.Role, "role"))
    active: Mapped[bool] = mapped_column(default=True)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    last_login_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    must_change_password: Mapped[bool] = mapped_column(default=False)


class LoginSession(Base):
    """Server-side half of a browser login; the cookie carries a signed random token."""

    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[Optional[str]] = mapped_column(String(64), unique=True)
    handoff_hash: Mapped[Optional[str]] = mapped_column(String(64), unique=True)
    handoff_expires_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    revoked_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    revoke_reason: Mapped[Optional[str]] = mapped_column(String(32))

    user: Mapped[User] = relationship()


class AuditEntry(Base):
    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_entries_entity", "entity", "entity_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    actor_name: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[Optional[int]]
    changes: Mapped[Optional[dict[str, Any]]] = mapped_column(JSONType)


# --------------------------------------------------------------------------- geography


class PlzCentroid(Base):
    __tablename__ = "plz_centroids"

    plz: Mapped[str] = mapped_column(String(5), primary_key=True)
    city: Mapped[str] = mapped_column(String(255))
    state_code: Mapped[Optional[str]] = mapped_column(String(2))
    lat: Mapped[float]
    lon: Mapped[float]


class GeocodeCacheEntry(Base):
    __tablename__ = "geocode_cache"

    id: Mapped[int] = mapped_column(primary_key=True)
    query: Mapped[str] = mapped_column(String(500), unique=True)
    found: Mapped[bool]
    lat: Mapped[Optional[float]]
    lon: Mapped[Optional[float]]
    display_name: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    hit_count: Mapped[int] = mapped_column(default=0)


# --------------------------------------------------------------------------- people


class Patient(TimestampMixin, Base):
    __tablename__ = "patients"
    __table_args__ = (
        sa.CheckConstraint(
            "max_distance_km IS NULL OR (max_distance_km >= 1 AND max_distance_km <= 200)",
            name="max_distance_range",
        ),
        Index("ix_patients_name_birth", "last_name", "first_name", "birth_date"),
        # matching reads only the latitude band around a practice (core.matching.load_searches_reaching)
        Index("ix_patients_lat_lon", "lat", "lon"),
        Index("ix_patients_max_distance_km", "max_distance_km"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    salutation: Mapped[vocab.Salutation] = mapped_column(
        enum_type(vocab.Salutation, "salutation"), default=vocab.Salutation.none
    )
    gender: Mapped[vocab.Gender] = mapped_column(
        enum_type(vocab.Gender, "gender"), default=vocab.Gender.unspecified
    )
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    birth_date: Mapped[Optional[date]]
    street: Mapped[Optional[str]] = mapped_column(String(255))
    plz: Mapped[Optional[str]] = mapped_column(String(5), index=True)
    city: Mapped[Optional[str]] = mapped_column(String(100))
    lat: Mapped[Optional[float]]
    lon: Mapped[Optional[float]]
    email: Mapped[Optional[str]] = mapped_column(String(255))
    phone: Mapped[Optional[str]] = mapped_column(String(32))
    gp_name: Mapped[Optional[str]] = mapped_column(String(255))
    insurer: Mapped[Optional[str]] = mapped_column(String(100))
    insurance_number: Mapped[Optional[str]] = mapped_column(String(10))
    symptoms: Mapped[list[str]] = mapped_column(JSONType, default=list)
    diagnosis: Mapped[Optional[str]] = mapped_column(String(10))
    prior_therapy: Mapped[Optional[bool]]
    prior_therapy_end: Mapped[Optional[date]]
    availability: Mapped[Optional[str]] = mapped_column(Text)
    max_distance_km: Mapped[Optional[int]]
    transport: Mapped[Optional[vocab.Transport]] = mapped_column(enum_type(vocab.Transport, "transport"))
    open_to_group: Mapped[Optional[bool]]
    preferred_therapist_gender: Mapped[vocab.GenderPreference] = mapped_column(
        enum_type(vocab.GenderPreference, "preferred_therapist_gender"), default=vocab.GenderPreference.any
    )
    preferred_methods: Mapped[list[str]] = mapped_column(JSONType, default=list)
    status: Mapped[vocab.PatientStatus] = mapped_column(
        enum_type(vocab.PatientStatus, "patient_status"), default=vocab.PatientStatus.open, index=True
    )
    referral_source: Mapped[Optional[str]] = mapped_column(String(255))
    contracts_signed: Mapped[bool] = mapped_column(default=False)
    consent_given: Mapped[bool] = mapped_column(default=False)
    consent_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    last_contact_on: Mapped[Optional[date]]
    notes: Mapped[Optional[str]] = mapped_column(Text)
    anonymised_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())

    searches: Mapped[list["Search"]] = relationship(back_populates="patient", passive_deletes="all")


# The method codes (Verfahren) and the Therapist columns that hold them: the one mapping.
METHOD_COLUMNS: dict[str, str] = {"VT": "offers_vt", "TP": "offers_tp", "AP": "offers_ap", "ST": "offers_st"}


def method_codes(row) -> tuple[str, ...]:
    """The method codes a therapist (model or result row with the offers_* columns) offers."""
    return tuple(code for code, column in METHOD_COLUMNS.items() if getattr(row, column))


class Therapist(TimestampMixin, Base):
    __tablename__ = "therapists"
    __table_args__ = (
        sa.CheckConstraint(
            "age_min IS NULL OR age_max IS NULL OR age_min <= age_max", name="age_range"
        ),
        Index("ix_therapists_status_plz", "status", "plz"),
        Index("ix_therapists_lat_lon", "lat", "lon"),
        Index("ix_therapists_name_plz", "last_name", "first_name", "plz"),
        # the practice key core.platform.addresses.email_key = lower(trim(email)) (migration 0012),
        # written as PostgreSQL reflects it so the models-equal-migrations check compares it
        Index("ix_therapists_email_key", sa.text("lower(TRIM(BOTH FROM email))")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    salutation: Mapped[vocab.Salutation] = mapped_column(
        enum_type(vocab.Salutation, "salutation"), default=vocab.Salutation.none
    )
    title: Mapped[Optional[str]] = mapped_column(String(40))
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    gender: Mapped[vocab.Gender] = mapped_column(
        enum_type(vocab.Gender, "gender"), default=vocab.Gender.unspecified
    )
    street: Mapped[Optional[str]] = mapped_column(String(255))
    plz: Mapped[Optional[str]] = mapped_column(String(5))
    city: Mapped[Optional[str]] = mapped_column(String(100))
    lat: Mapped[Optional[float]]
    lon: Mapped[Optional[float]]
    coordinates_source: Mapped[vocab.CoordinatesSource] = mapped_column(
        enum_type(vocab.CoordinatesSource, "coordinates_source"), default=vocab.CoordinatesSource.missing
    )
    geocode_pending: Mapped[bool] = mapped_column(default=False, index=True)
    phone: Mapped[Optional[str]] = mapped_column(String(32))
    fax: Mapped[Optional[str]] = mapped_column(String(32))
    email: Mapped[Optional[str]] = mapped_column(String(255), index=True)
    website: Mapped[Optional[str]] = mapped_column(String(255))
    statutory_licence: Mapped[bool] = mapped_column(default=True)
    phone_hours: Mapped[Optional[str]] = mapped_column(Text)
    languages: Mapped[list[str]] = mapped_column(JSONType, default=list)
    offers_vt: Mapped[bool] = mapped_column(default=False)
    offers_tp: Mapped[bool] = mapped_column(default=False)
    offers_ap: Mapped[bool] = mapped_column(default=False)
    offers_st: Mapped[bool] = mapped_column(default=False)
    offers_individual: Mapped[bool] = mapped_column(default=True)
    offers_group: Mapped[bool] = mapped_column(default=False)
    prefers_group: Mapped[bool] = mapped_column(default=False)
    age_min: Mapped[Optional[int]]
    age_max: Mapped[Optional[int]]
    patient_gender_preference: Mapped[vocab.GenderPreference] = mapped_column(
        enum_type(vocab.GenderPreference, "patient_gender_preference"), default=vocab.GenderPreference.any
    )
    potentially_available: Mapped[bool] = mapped_column(default=False)
    potentially_available_notes: Mapped[Optional[str]] = mapped_column(Text)
    knows_us: Mapped[bool] = mapped_column(default=False)
    next_contact_at: Mapped[Optional[date]] = mapped_column(index=True)
    status: Mapped[vocab.TherapistStatus] = mapped_column(
        enum_type(vocab.TherapistStatus, "therapist_status"), default=vocab.TherapistStatus.active
    )
    status_reason: Mapped[Optional[str]] = mapped_column(Text)
    status_changed_on: Mapped[Optional[date]]
    last_contact_email_on: Mapped[Optional[date]]
    last_contact_phone_on: Mapped[Optional[date]]
    phone_invalid: Mapped[bool] = mapped_column(default=False, server_default=sa.false())  # "falsche Nummer" (0003)
    last_contact_in_person_on: Mapped[Optional[date]]
    external_id: Mapped[Optional[str]] = mapped_column(String(64), unique=True)
    source_hash: Mapped[Optional[str]] = mapped_column(String(64))
    hand_edited_fields: Mapped[list[str]] = mapped_column(JSONType, default=list)
    delisted_on: Mapped[Optional[date]]
    notes: Mapped[Optional[str]] = mapped_column(Text)
    # imports (0004): digest of the 116117 entry last applied; the same entry again is not re-read
    source_entry_hash: Mapped[Optional[str]] = mapped_column(String(32))

    @property
    def methods(self) -> set[str]:
        return set(method_codes(self))

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.title, self.first_name, self.last_name) if p)


class TherapistDocument(Base):
    """A PDF form of a therapist, attached to the patient's success e-mail."""

    __tablename__ = "therapist_documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    therapist_id: Mapped[int] = mapped_column(ForeignKey("therapists.id", ondelete="RESTRICT"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content: Mapped[bytes] = mapped_column(sa.LargeBinary)
    size_bytes: Mapped[int]
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PatientExclusion(Base):
    """A therapist the patient does not want to be asked again (permanent, patient level)."""

    __tablename__ = "patient_exclusions"
    __table_args__ = (UniqueConstraint("patient_id", "therapist_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="RESTRICT"))
    therapist_id: Mapped[int] = mapped_column(ForeignKey("therapists.id", ondelete="RESTRICT"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))


# --------------------------------------------------------------------------- searches and inquiries


class Search(TimestampMixin, Base):
    __tablename__ = "searches"
    __table_args__ = (
        Index(
            "uq_searches_one_active_per_patient",
            "patient_id",
            unique=True,
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        ),
        sa.CheckConstraint(
            "status <> 'successful' OR placed_therapist_id IS NOT NULL", name="successful_has_therapist"
        ),
        Index("ix_searches_status_started", "status", "started_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="RESTRICT"), index=True)
    status: Mapped[vocab.SearchStatus] = mapped_column(
        enum_type(vocab.SearchStatus, "search_status"), default=vocab.SearchStatus.active
    )
    started_on: Mapped[date]
    paused_on: Mapped[Optional[date]]
    ended_on: Mapped[Optional[date]]
    placed_therapist_id: Mapped[Optional[int]] = mapped_column(ForeignKey("therapists.id", ondelete="RESTRICT"))
    placed_on: Mapped[Optional[date]]
    success_on: Mapped[Optional[date]]
    notes: Mapped[Optional[str]] = mapped_column(Text)
    version: Mapped[int] = mapped_column(default=1)

    patient: Mapped[Patient] = relationship(back_populates="searches")

    __mapper_args__ = {"version_id_col": version}


class SearchExclusion(Base):
    __tablename__ = "search_exclusions"
    __table_args__ = (UniqueConstraint("search_id", "therapist_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("searches.id", ondelete="RESTRICT"))
    therapist_id: Mapped[int] = mapped_column(ForeignKey("therapists.id", ondelete="RESTRICT"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    excluded_on: Mapped[date]
    created_by: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))


# The open inquiries as an index predicate: the SQL of core.matching.regions.open_inquiry_clause
# (without an excluded inquiry), so PostgreSQL and SQLite can use the partial index for it.
OPEN_INQUIRY_PREDICATE = "status IN ('draft', 'queued', 'sent') AND NOT (status = 'draft' AND origin = 'nightly')"


class Inquiry(TimestampMixin, Base):
    """Anfrage: one therapist, 1..MAX_INQUIRY_SIZE patients (searches) in order."""

    __tablename__ = "inquiries"
    __table_args__ = (
        sa.CheckConstraint("size >= 1", name="size_positive"),
        Index("ix_inquiries_therapist_status", "therapist_id", "status"),
        Index("ix_inquiries_status_sent", "status", "sent_at"),
        # a therapist's open inquiry (core.matching.regions.open_inquiry_clause; migration 0012)
        Index(
            "ix_inquiries_open_by_therapist",
            "therapist_id",
            "id",
            sqlite_where=sa.text(OPEN_INQUIRY_PREDICATE),
            postgresql_where=sa.text(OPEN_INQUIRY_PREDICATE),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    therapist_id: Mapped[int] = mapped_column(ForeignKey("therapists.id", ondelete="RESTRICT"))
    channel: Mapped[vocab.InquiryChannel] = mapped_column(enum_type(vocab.InquiryChannel, "inquiry_channel"))
    status: Mapped[vocab.InquiryStatus] = mapped_column(
        enum_type(vocab.InquiryStatus, "inquiry_status"), default=vocab.InquiryStatus.draft
    )
    origin: Mapped[vocab.InquiryOrigin] = mapped_column(
        enum_type(vocab.InquiryOrigin, "inquiry_origin"), default=vocab.InquiryOrigin.manual
    )
    plan_region: Mapped[Optional[str]] = mapped_column(String(5))
    size: Mapped[int]
    created_by: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    queued_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    sent_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    answered_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    expired_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    response_type: Mapped[Optional[vocab.ResponseType]] = mapped_column(
        enum_type(vocab.ResponseType, "response_type")
    )
    reduced: Mapped[bool] = mapped_column(default=False)
    needs_attention: Mapped[bool] = mapped_column(default=False)
    attention_reason: Mapped[Optional[str]] = mapped_column(Text)
    notes: Mapped[Optional[str]] = mapped_column(Text)
    version: Mapped[int] = mapped_column(default=1)

    patients: Mapped[list["InquiryPatient"]] = relationship(
        back_populates="inquiry", order_by="InquiryPatient.position", cascade="all, delete-orphan"
    )
    therapist: Mapped[Therapist] = relationship()

    __mapper_args__ = {"version_id_col": version}


class InquiryPatient(Base):
    __tablename__ = "inquiry_patients"
    __table_args__ = (
        UniqueConstraint("inquiry_id", "search_id"),
        sa.CheckConstraint("position >= 1", name="position_positive"),
        Index("ix_inquiry_patients_search_outcome", "search_id", "outcome"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    inquiry_id: Mapped[int] = mapped_column(ForeignKey("inquiries.id", ondelete="CASCADE"))
    search_id: Mapped[int] = mapped_column(ForeignKey("searches.id", ondelete="RESTRICT"))
    position: Mapped[int]
    outcome: Mapped[vocab.Outcome] = mapped_column(enum_type(vocab.Outcome, "outcome"), default=vocab.Outcome.pending)
    outcome_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    outcome_notes: Mapped[Optional[str]] = mapped_column(Text)
    withdrawn_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    withdrawn_reason: Mapped[Optional[str]] = mapped_column(Text)
    conflict: Mapped[bool] = mapped_column(default=False)
    conflict_resolved_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    conflict_note: Mapped[Optional[str]] = mapped_column(Text)
    waitlist_until: Mapped[Optional[date]]  # outcome waitlisted: the expected date, if given (0003)

    inquiry: Mapped[Inquiry] = relationship(back_populates="patients")
    search: Mapped[Search] = relationship()


# --------------------------------------------------------------------------- communication


class OutboxEmail(TimestampMixin, Base):
    __tablename__ = "outbox_emails"
    __table_args__ = (
        sa.CheckConstraint(
            "(therapist_id IS NULL) <> (patient_id IS NULL)", name="exactly_one_recipient"
        ),
        Index("ix_outbox_emails_state_next", "state", "next_attempt_at"),
        Index("ix_outbox_emails_therapist_sent", "therapist_id", "sent_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    therapist_id: Mapped[Optional[int]] = mapped_column(ForeignKey("therapists.id", ondelete="RESTRICT"))
    patient_id: Mapped[Optional[int]] = mapped_column(ForeignKey("patients.id", ondelete="RESTRICT"), index=True)
    inquiry_id: Mapped[Optional[int]] = mapped_column(ForeignKey("inquiries.id", ondelete="RESTRICT"), index=True)
    to_address: Mapped[str] = mapped_column(String(255))
    to_name: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    body_html: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    template: Mapped[str] = mapped_column(String(64))
    attachment_document_ids: Mapped[list[int]] = mapped_column(JSONType, default=list)
    state: Mapped[vocab.EmailState] = mapped_column(
        enum_type(vocab.EmailState, "email_state"), default=vocab.EmailState.draft
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    last_error: Mapped[Optional[str]] = mapped_column(Text)
    message_id: Mapped[Optional[str]] = mapped_column(String(255))
    lease_owner: Mapped[Optional[str]] = mapped_column(String(64))
    lease_expires_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    queued_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    sent_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    created_by: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))


class PhoneCall(TimestampMixin, Base):
    __tablename__ = "phone_calls"
    __table_args__ = (
        sa.CheckConstraint(
            "(therapist_id IS NULL) <> (patient_id IS NULL)", name="exactly_one_callee"
        ),
        sa.CheckConstraint("duration_minutes >= 1", name="duration_positive"),
        sa.CheckConstraint("attempt >= 1", name="attempt_positive"),
        Index("ix_phone_calls_state_start", "state", "scheduled_start"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    therapist_id: Mapped[Optional[int]] = mapped_column(ForeignKey("therapists.id", ondelete="RESTRICT"), index=True)
    patient_id: Mapped[Optional[int]] = mapped_column(ForeignKey("patients.id", ondelete="RESTRICT"), index=True)
    inquiry_id: Mapped[Optional[int]] = mapped_column(ForeignKey("inquiries.id", ondelete="RESTRICT"), index=True)
    purpose: Mapped[vocab.CallPurpose] = mapped_column(
        enum_type(vocab.CallPurpose, "call_purpose"), default=vocab.CallPurpose.other
    )
    scheduled_start: Mapped[datetime] = mapped_column(UTCDateTime())
    duration_minutes: Mapped[int] = mapped_column(default=5)
    state: Mapped[vocab.CallState] = mapped_column(
        enum_type(vocab.CallState, "call_state"), default=vocab.CallState.scheduled
    )
    outcome: Mapped[Optional[str]] = mapped_column(Text)
    notes: Mapped[Optional[str]] = mapped_column(Text)
    attempt: Mapped[int] = mapped_column(default=1)
    previous_call_id: Mapped[Optional[int]] = mapped_column(ForeignKey("phone_calls.id", ondelete="RESTRICT"))
    done_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    done_by: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    # issue 10 (migration 0003): the coordinator's result, who calls, how it was planned
    result: Mapped[Optional[vocab.CallResult]] = mapped_column(enum_type(vocab.CallResult, "call_result"))
    assigned_to: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    # server defaults too: bulk loaders (demo COPY) that leave these columns out get false
    uses_fallback: Mapped[bool] = mapped_column(default=False, server_default=sa.false())  # "keine Telefonzeiten bekannt"
    fixed_time: Mapped[bool] = mapped_column(default=False, server_default=sa.false())  # agreed callback: outside phone hours ok


# --------------------------------------------------------------------------- imports


class ImportRun(Base):
    __tablename__ = "import_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    filename: Mapped[Optional[str]] = mapped_column(String(500))
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[vocab.ImportRunStatus] = mapped_column(
        enum_type(vocab.ImportRunStatus, "import_run_status"), default=vocab.ImportRunStatus.running
    )
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    records_total: Mapped[int] = mapped_column(default=0)
    new_count: Mapped[int] = mapped_column(default=0)
    changed_count: Mapped[int] = mapped_column(default=0)
    delisted_count: Mapped[int] = mapped_column(default=0)
    unchanged_count: Mapped[int] = mapped_column(default=0)
    error_count: Mapped[int] = mapped_column(default=0)
    errors: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    created_by: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    # imports (0004): skipped entries, the input format, the searched area, warnings, the live fetch
    skipped_count: Mapped[int] = mapped_column(default=0, server_default=sa.text("0"))
    details: Mapped[Optional[dict[str, Any]]] = mapped_column(JSONType)


class ImportChange(Base):
    __tablename__ = "import_changes"
    __table_args__ = (
        Index("ix_import_changes_run_state", "run_id", "review_state"),
        Index("ix_import_changes_state_kind", "review_state", "kind"),
        Index("ix_import_changes_external_id", "external_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("import_runs.id", ondelete="CASCADE"))
    therapist_id: Mapped[Optional[int]] = mapped_column(ForeignKey("therapists.id", ondelete="RESTRICT"), index=True)
    external_id: Mapped[Optional[str]] = mapped_column(String(64))
    kind: Mapped[vocab.ImportChangeKind] = mapped_column(enum_type(vocab.ImportChangeKind, "import_change_kind"))
    fields: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    review_state: Mapped[vocab.ReviewState] = mapped_column(
        enum_type(vocab.ReviewState, "review_state"), default=vocab.ReviewState.pending
    )
    reviewed_by: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    reviewed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    # imports (0004): what the review lists and filters without joins, and the full incoming record
    display_name: Mapped[Optional[str]] = mapped_column(String(255))
    plz: Mapped[Optional[str]] = mapped_column(String(5))
    has_conflicts: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    note: Mapped[Optional[str]] = mapped_column(Text)
    candidates: Mapped[Optional[list[int]]] = mapped_column(JSONType)
    record: Mapped[Optional[dict[str, Any]]] = mapped_column(JSONType)
    values_hash: Mapped[Optional[str]] = mapped_column(String(64))
    entry_hash: Mapped[Optional[str]] = mapped_column(String(32))


# --------------------------------------------------------------------------- job runner


class JobRun(Base):
    __tablename__ = "job_runs"
    __table_args__ = (Index("ix_job_runs_name_started", "job_name", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_name: Mapped[str] = mapped_column(String(64))
    runner_id: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    result: Mapped[vocab.JobResult] = mapped_column(enum_type(vocab.JobResult, "job_result"), default=vocab.JobResult.running)
    summary: Mapped[Optional[str]] = mapped_column(Text)
    error: Mapped[Optional[str]] = mapped_column(Text)


class RunnerHeartbeat(Base):
    """One row per job-runner process; the leader's row says it runs the jobs."""

    __tablename__ = "runner_heartbeats"

    runner_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int]
    is_leader: Mapped[bool] = mapped_column(default=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    stopped_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())


# --------------------------------------------------------------------------- inbox (Posteingang)


class InboxMessage(TimestampMixin, Base):
    """One received mail (reply, bounce, auto-reply or other), stored once: the SHA-256 of
    its raw bytes is unique, the Message-ID is looked up too. Bodies are already reduced to
    what may be shown: text, the quoted history apart, sanitised HTML; attachments are only
    listed."""

    __tablename__ = "inbox_messages"
    __table_args__ = (Index("ix_inbox_messages_state_kind", "state", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    message_id: Mapped[Optional[str]] = mapped_column(String(255), index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    from_address: Mapped[str] = mapped_column(String(255), index=True, default="")
    from_name: Mapped[str] = mapped_column(String(255), default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[vocab.InboxKind] = mapped_column(enum_type(vocab.InboxKind, "inbox_kind"))
    state: Mapped[vocab.InboxState] = mapped_column(
        enum_type(vocab.InboxState, "inbox_state"), default=vocab.InboxState.new
    )
    match: Mapped[vocab.InboxMatch] = mapped_column(
        enum_type(vocab.InboxMatch, "inbox_match"), default=vocab.InboxMatch.none
    )
    body_text: Mapped[str] = mapped_column(Text, default="")
    quoted_text: Mapped[str] = mapped_column(Text, default="")
    body_html: Mapped[str] = mapped_column(Text, default="")
    attachments: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    warnings: Mapped[list[str]] = mapped_column(JSONType, default=list)
    thread_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)
    reject_reason: Mapped[Optional[str]] = mapped_column(Text)
    size: Mapped[int] = mapped_column(default=0)
    inquiry_id: Mapped[Optional[int]] = mapped_column(ForeignKey("inquiries.id", ondelete="RESTRICT"), index=True)
    therapist_id: Mapped[Optional[int]] = mapped_column(ForeignKey("therapists.id", ondelete="RESTRICT"), index=True)
    patient_id: Mapped[Optional[int]] = mapped_column(ForeignKey("patients.id", ondelete="RESTRICT"), index=True)
    outbox_email_id: Mapped[Optional[int]] = mapped_column(ForeignKey("outbox_emails.id", ondelete="RESTRICT"), index=True)
    bounce_recipient: Mapped[Optional[str]] = mapped_column(String(255))
    bounce_status: Mapped[Optional[str]] = mapped_column(String(32))
    bounce_diagnostic: Mapped[Optional[str]] = mapped_column(Text)
    return_date: Mapped[Optional[date]]
    handled_by: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    handled_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    handled_note: Mapped[Optional[str]] = mapped_column(Text)


class InvalidEmailAddress(Base):
    """An address that bounced permanently: no mail goes to it until a coordinator corrects
    the e-mail of its therapist/patient (a new address is not on this list) or clears it."""

    __tablename__ = "invalid_email_addresses"

    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(255), unique=True)  # lower case
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[Optional[str]] = mapped_column(String(32))
    flagged_at: Mapped[datetime] = mapped_column(UTCDateTime())
    inbox_message_id: Mapped[Optional[int]] = mapped_column(ForeignKey("inbox_messages.id", ondelete="SET NULL"))
    cleared_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    cleared_by: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))


# Replies are threaded by the Message-ID the outbox stored (In-Reply-To / References).
Index("ix_outbox_emails_message_id", OutboxEmail.message_id)


# --------------------------------------------------------------------------- login throttling


class LoginThrottle(Base):
    """Failed logins per (typed name, source) and per source, with a growing wait.

    Keys are HMACs under the secret key: a password typed into the name field is never
    stored readable. `name_key` (HMAC of the typed name alone) lets an admin unlock an account
    for every source at once; it is NULL for the per-source rows.
    """

    __tablename__ = "login_throttles"

    id: Mapped[int] = mapped_column(primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name_key: Mapped[Optional[str]] = mapped_column(String(64), index=True)
    failures: Mapped[int] = mapped_column(default=0)
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime())
    blocked_until: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
