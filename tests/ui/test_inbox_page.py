"""AppTest: the Posteingang page for every role; a reply whose HTML has a script, an iframe
and a remote image renders without any of them; quoted history folded; attachments listed;
viewers see no bodies; assign, dismiss and "Antwort erfassen" (pre-filled) from the page."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from core.inbox import store
from core.platform.config import get_settings
from core.platform.db import get_engine, read_session, unit_of_work
from core.platform.models import InboxMessage, Inquiry, OutboxEmail
from core.platform.vocab import EmailState, InboxState, InquiryStatus, Outcome, Role
from tests.support.outbox_fixtures import make_inquiry, make_patient, make_therapist
from tests.support.apptest import login, texts
from tests.support.mail_samples import DSN, evil_reply

@pytest.fixture
def inbox_db(app_db):
    engine = get_engine(app_db)
    now = datetime.now(timezone.utc)
    with unit_of_work(engine) as s:
        t = make_therapist(s, email="praxis@example.org")
        inquiry = make_inquiry(s, t, [make_patient(s, first_name="Anna", last_name="Apfel"),
                                      make_patient(s, first_name="Bert", last_name="Birne", email="bert@example.org")],
                               status=InquiryStatus.sent, sent_at=now - timedelta(days=2))
        sent = OutboxEmail(therapist_id=t.id, inquiry_id=inquiry.id, to_address="praxis@example.org", to_name="Praxis",
                           subject="Anfrage", body_html="x", body_text="x", template="therapist_inquiry",
                           state=EmailState.sent, message_id="<out-1@vermittlung.example.de>", sent_at=now - timedelta(days=2))
        s.add(sent)
        s.flush()
        reply = store.store_message(s, evil_reply("<reply-1@example.org>", sent.message_id), now=now).inbox_id
        stray = store.store_message(s, b"From: fremd@example.net\r\nSubject: Werbung\r\nMessage-ID: <w1@x>\r\n\r\nKaufen!", now=now).inbox_id
        bounce = store.store_message(s, DSN.replace(b"praxis.alt@example.org", b"bert@example.org"), now=now).inbox_id
        ids = {"reply": reply, "stray": stray, "inquiry": inquiry.id, "bounce": bounce}
    yield ids


def open_page(role, message_id=None, tab=None):
    at = login(role)
    at.switch_page("pages/inbox.py")
    if message_id is not None:
        at.query_params["nachricht"] = str(message_id)
    at.run()
    if tab is not None:
        at.segmented_control(key="inbox_tab").set_value(tab).run()
    assert not at.exception, at.exception
    return at


def all_text(at) -> str:
    parts = [texts(at)] + [c.value for c in at.code] + [str(h.proto.body) for h in at.get("html")]
    parts += [df.value.to_csv() for df in at.dataframe] + [t.value for t in at.text] + [i.value for i in at.info]
    return "\n".join(parts)


@pytest.mark.parametrize("role", list(Role))
def test_page_renders_for_every_role(inbox_db, role):
    at = open_page(role)
    assert at.title[0].value == "Posteingang"
    options = at.segmented_control(key="inbox_tab").options
    assert "Neu (2)" in options and "Nicht zugeordnet (1)" in options and "Rückläufer (1)" in options
    assert any("nicht eingerichtet" in i.value for i in at.info)  # no IMAP_HOST in the tests: how to switch it on
    text = all_text(at)
    if role == Role.viewer:
        assert "praxis@example.org" not in text and "fremd@example.net" not in text


def test_reply_with_script_iframe_and_remote_image_renders_without_them(inbox_db):
    at = open_page(Role.coordinator, inbox_db["reply"])
    html = [str(h.proto.body) for h in at.get("html")]
    assert html, "the sanitised HTML view is missing"
    joined = "\n".join(html).lower()
    for bad in ("<script", "alert(", "<iframe", "<img", "track.example", "evil.example", "onload", "javascript:", "style="):
        assert bad not in joined, bad
    assert "<b>keine</b>" in joined
    codes = [c.value for c in at.code]
    assert codes[0].startswith("Guten Tag") and "wir suchen" not in codes[0]  # the text, without the history
    assert any(e.label == "Zitierter Verlauf" for e in at.expander)
    assert any("wir suchen einen Platz" in c for c in codes[1:])  # folded, not lost
    assert "Warteliste.pdf" in all_text(at)


def test_answer_beside_the_reply_is_prefilled_and_records(inbox_db):
    at = open_page(Role.coordinator, inbox_db["reply"])
    boxes = [sb for sb in at.selectbox if sb.key and sb.key.startswith(f"inbox_outcome_{inbox_db['reply']}_")]
    assert len(boxes) == 2 and all(sb.value == Outcome.rejected_capacity for sb in boxes)
    at.button(key=f"FormSubmitter:inbox_answer_{inbox_db['reply']}-Antwort speichern").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    with read_session(get_engine(get_settings().DATABASE_URL)) as s:
        assert s.get(Inquiry, inbox_db["inquiry"]).status == InquiryStatus.answered
        assert s.get(InboxMessage, inbox_db["reply"]).state == InboxState.recorded


def test_assign_and_dismiss_from_the_page(inbox_db):
    at = open_page(Role.coordinator, inbox_db["stray"], tab="unassigned")
    at.text_input(key=f"inbox_ref_{inbox_db['stray']}").input(f"A{inbox_db['inquiry']}")
    at.button(key=f"FormSubmitter:inbox_assign_{inbox_db['stray']}-Zuordnen").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    with read_session(get_engine(get_settings().DATABASE_URL)) as s:
        row = s.get(InboxMessage, inbox_db["stray"])
        assert (row.inquiry_id, row.state) == (inbox_db["inquiry"], InboxState.assigned)
    at = open_page(Role.coordinator, inbox_db["stray"], tab="assigned")
    at.button(key=f"FormSubmitter:inbox_dismiss_{inbox_db['stray']}-Verwerfen (nichts zu tun)").click().run()
    assert not at.exception
    with read_session(get_engine(get_settings().DATABASE_URL)) as s:
        assert s.get(InboxMessage, inbox_db["stray"]).state == InboxState.dismissed


def test_viewer_sees_no_body_and_no_actions(inbox_db):
    at = open_page(Role.viewer, inbox_db["reply"])
    assert any("nicht sichtbar" in i.value for i in at.info)
    assert not at.code and not at.get("html")
    assert not [b for b in at.button if "Zuordnen" in (b.label or "")]
    assert "keine freien Plätze" not in all_text(at)


def test_bounce_shows_the_failed_address_and_the_servers_text(inbox_db):
    at = open_page(Role.coordinator, inbox_db["bounce"], tab="bounces")
    errors = "\n".join(e.value for e in at.error)
    assert "Rückläufer" in errors and "bert@example.org" in errors and "5.1.1" in errors
    assert any("User unknown" in t.value for t in at.text)


def test_opening_a_reply_is_recorded_as_a_read_but_not_for_viewers(inbox_db, app_db):
    """Issue 15.2: reading a therapist's reply (it may carry health data) is audited."""
    from sqlalchemy import func, select

    from core.platform.db import read_session
    from core.platform.models import AuditEntry

    def reads_of_reply():
        with read_session(get_engine(app_db)) as s:
            return s.scalar(select(func.count()).select_from(AuditEntry).where(
                AuditEntry.action == "read.reply", AuditEntry.entity_id == inbox_db["reply"]))

    open_page(Role.viewer, inbox_db["reply"])
    assert reads_of_reply() == 0
    open_page(Role.coordinator, inbox_db["reply"])
    assert reads_of_reply() == 1
