"""AppTest: the Postausgang page for every role, approve/retry from the detail, viewers see
no bodies or addresses, the local mail folder is shown."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from core.mail import templates as mt
from core.mail import delivery
from core.mail import outbox
from core.adapters.smtp import FolderSender, SendError
from core.platform.config import get_settings
from core.platform.db import get_engine, read_session, unit_of_work
from core.platform.models import OutboxEmail
from core.platform.permissions import Actor
from core.platform.vocab import EmailState, Role
from tests.support.outbox_fixtures import make_inquiry, make_patient, make_therapist
from tests.support.apptest import login, texts

COORD = Actor(user_id=None, username="seed", role=Role.coordinator)


@pytest.fixture
def outbox_db(app_db, tmp_path, monkeypatch):
    """One draft, one queued, one sent, one failed mail (real clock: the page reads it)."""
    monkeypatch.setenv("MAIL_FOLDER", str(tmp_path / "mail"))
    get_settings.cache_clear()
    settings = get_settings()
    engine = get_engine(app_db)
    now = datetime.now(timezone.utc)
    ids = {}
    with unit_of_work(engine) as s:
        t = make_therapist(s, email="praxis@example.org")
        inq = make_inquiry(s, t, [make_patient(s, first_name="<script>alert(1)</script>", last_name="Geheim")])
        ids["draft"] = outbox.queue_inquiry_email(s, COORD, inq.id, now, settings=settings).id
        p = make_patient(s, first_name="Paula", last_name="Patientin", email="paula@example.org")
        ids["sent"] = outbox.queue_patient_email(s, COORD, p.id, mt.PATIENT_SEARCH_STARTED, now, approve=True, settings=settings).id
        q = make_patient(s, first_name="Fritz", last_name="Fehler", email="fritz@example.org")
        ids["failed"] = outbox.queue_patient_email(s, COORD, q.id, mt.PATIENT_STATUS_UPDATE, now, approve=True, settings=settings).id

    @contextmanager
    def scope():
        with unit_of_work(engine) as s:
            yield s

    class FailForFritz(FolderSender):
        @contextmanager
        def connect(self):
            with super().connect() as transport:
                class T:
                    def send(self, message):
                        if "fritz" in str(message["To"]):
                            raise SendError("550 5.1.1 <fritz@example.org>: Recipient address rejected", temporary=False, code=550)
                        transport.send(message)
                yield T()

    delivery.deliver_due(scope, FailForFritz(tmp_path / "mail"), lambda: now, owner="t", settings=settings)
    with unit_of_work(engine) as s:
        r = make_patient(s, first_name="Quentin", last_name="Queue", email="q@example.org")
        ids["queued"] = outbox.queue_patient_email(s, COORD, r.id, mt.PATIENT_STATUS_UPDATE, now, approve=True, settings=settings).id
    yield ids
    get_settings.cache_clear()


def open_page(role, email_id=None):
    at = login(role)
    at.switch_page("pages/outbox.py")
    if email_id is not None:
        at.query_params["email"] = str(email_id)
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("role", list(Role))
def test_page_renders_tabs_with_counts_for_every_role(outbox_db, role):
    at = open_page(role)
    assert at.title[0].value == "Postausgang"
    labels = [t.label for t in at.tabs]
    for label in ("Entwürfe (1)", "Warteschlange (1)", "Gesendet (1)", "Fehlgeschlagen (1)", "Storniert (0)"):
        assert label in labels
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Fehlgeschlagen"] == "1" and metrics["Jetzt fällig"] == "1"
    page_text = texts(at) + "\n".join(df.value.to_csv() for df in at.dataframe)
    assert "Anfrage an Therapeut:in" in page_text
    if role == Role.viewer:
        assert "paula@example.org" not in page_text and "Paula" not in page_text
    assert "<script>" not in page_text


def test_coordinator_previews_and_approves_a_draft(outbox_db):
    at = open_page(Role.coordinator, outbox_db["draft"])
    assert any("Anfrage Psychotherapieplatz" in m.value for m in at.markdown)
    assert "Freigeben" in [b.label for b in at.button]
    body = [c.value for c in at.code]
    assert body and "Geheim" not in body[0] and "Ref. A" in body[0]  # pseudonymous
    at.checkbox(key=f"confirm_approve_drafts_{outbox_db['draft']}").check().run()
    at.button(key=f"approve_drafts_{outbox_db['draft']}").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    with read_session(get_engine(get_settings().DATABASE_URL)) as s:
        assert s.get(OutboxEmail, outbox_db["draft"]).state == EmailState.queued


def test_failed_mail_shows_the_servers_text_and_can_be_retried(outbox_db):
    at = open_page(Role.coordinator, outbox_db["failed"])
    # shown as text: the angle brackets are escaped (no autolink, no HTML)
    assert any("550 5.1.1 \\<fritz@example.org\\>: Recipient address rejected" in e.value for e in at.error)
    at.button(key=f"retry_failed_{outbox_db['failed']}").click().run()
    assert not at.exception
    with read_session(get_engine(get_settings().DATABASE_URL)) as s:
        assert s.get(OutboxEmail, outbox_db["failed"]).state == EmailState.queued


def test_viewer_gets_no_body_and_no_actions(outbox_db):
    at = open_page(Role.viewer, outbox_db["draft"])
    assert "nicht sichtbar" in "\n".join(i.value for i in at.info)
    assert "Freigeben" not in [b.label for b in at.button]
    assert not at.code
    assert "praxis@example.org" not in texts(at)


def test_local_mail_folder_lists_sent_mail(outbox_db):
    at = open_page(Role.coordinator)
    assert any(e.label.startswith("Lokaler Mailordner (1") for e in at.expander)
    assert any("paula@example.org" in str(o) for o in at.selectbox(key="outbox_folder_pick").options)


def test_coordinator_creates_a_patient_draft(outbox_db):
    with read_session(get_engine(get_settings().DATABASE_URL)) as s:
        patient_id = s.scalars(select(OutboxEmail.patient_id).where(OutboxEmail.id == outbox_db["sent"])).one()
    at = open_page(Role.coordinator)
    at.text_input(key="compose_patient").input(f"P{patient_id}")  # the patient's reference, not a bare "Nr."
    at.selectbox(key="compose_kind").set_value(mt.PATIENT_STATUS_UPDATE)
    at.text_area(key="compose_message").input("Wir haben neue Praxen angefragt.")
    at.button(key="FormSubmitter:outbox_compose-Entwurf erstellen").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "Entwürfe (2)" in [t.label for t in at.tabs]


def test_point4_compose_asks_for_a_patient_reference(outbox_db):
    """"Nachricht an Patient:in erstellen" asked for a "Patient:in Nr." (which number?); it asks
    for the reference (P152) and refuses another kind's (S150) with a German message."""
    at = open_page(Role.coordinator)
    field = at.text_input(key="compose_patient")
    assert "P152" in field.label
    field.input("S150")
    at.button(key="FormSubmitter:outbox_compose-Entwurf erstellen").click().run()
    assert any("Kennung der Patient:in" in e.value for e in at.error)
    assert not [i for i in at.number_input if (i.key or "").startswith(("compose_", "docs_"))]


def test_opening_a_mail_body_is_recorded_as_a_read_but_not_for_viewers(outbox_db, app_db):
    """Issue 15.2: a mail body names a patient (patient mails) or describes patients (inquiry
    mails); showing it is audited, tied to the patient, and appears in 'wer hat was gesehen'."""

    from core.platform.models import AuditEntry

    def reads_of(email_id):
        with read_session(get_engine(app_db)) as s:
            return s.execute(select(AuditEntry.changes).where(
                AuditEntry.action == "read.email", AuditEntry.entity_id == email_id)).scalars().all()

    open_page(Role.viewer, outbox_db["sent"])
    assert reads_of(outbox_db["sent"]) == []
    open_page(Role.coordinator, outbox_db["sent"])
    with read_session(get_engine(app_db)) as s:
        paula = s.scalar(select(OutboxEmail.patient_id).where(OutboxEmail.id == outbox_db["sent"]))
    assert reads_of(outbox_db["sent"]) == [{"patient_id": paula}]
    open_page(Role.coordinator, outbox_db["draft"])  # an inquiry mail
    assert len(reads_of(outbox_db["draft"])) == 1
