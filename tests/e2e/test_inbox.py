"""Chromium: a coordinator opens a reply in the Posteingang. Its HTML had a script, an iframe
and a remote image: none of them is in the page, the browser asks no outside host for
anything, the quoted history is folded, and the answer form sits beside the reply."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import urlparse

import pytest

from core.inbox import store
from core.platform.db import make_engine, unit_of_work
from core.platform.models import OutboxEmail
from core.platform.vocab import EmailState, InquiryStatus, Role
from tests.e2e.conftest import screenshot, wait_for_app
from tests.e2e.test_login_flow import _login
from tests.support.outbox_fixtures import make_inquiry, make_patient, make_therapist
from tests.support.mail_samples import evil_reply

pytestmark = pytest.mark.e2e


@pytest.fixture
def reply_id(server):
    engine = make_engine(server["db"])
    now = datetime.now(timezone.utc)
    try:
        with unit_of_work(engine) as s:
            t = make_therapist(s, email="praxis.e2e@example.org", last_name="Weber")
            inquiry = make_inquiry(s, t, [make_patient(s, first_name="Anna", last_name="Apfel", email=None),
                                          make_patient(s, first_name="Bert", last_name="Birne", email=None)],
                                   status=InquiryStatus.sent, sent_at=now - timedelta(days=2))
            sent = OutboxEmail(therapist_id=t.id, inquiry_id=inquiry.id, to_address=t.email, to_name="Praxis",
                               subject="Anfrage", body_html="x", body_text="x", template="therapist_inquiry",
                               state=EmailState.sent, message_id="<e2e-out@vermittlung.example.de>", sent_at=now)
            s.add(sent)
            s.flush()
            raw = evil_reply("<e2e-reply@example.org>", sent.message_id).replace(b"praxis@example.org", t.email.encode())
            return store.store_message(s, raw, now=now).inbox_id
    finally:
        engine.dispose()


def test_reply_renders_without_script_iframe_or_remote_image(server, page, reply_id):
    outside = []
    page.on("request", lambda r: outside.append(r.url) if urlparse(r.url).hostname not in ("127.0.0.1", "localhost") else None)
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(server["url"])
    wait_for_app(page)
    _login(page, Role.coordinator)
    page.get_by_role("heading", name="Übersicht").wait_for()
    page.goto(f"{server['url']}/posteingang?nachricht={reply_id}")
    wait_for_app(page)
    page.get_by_role("heading", name="Posteingang").wait_for()
    page.get_by_text("Guten Tag").first.wait_for()
    page.get_by_text("Antwort erfassen").first.wait_for()
    page.get_by_text("Zitierter Verlauf").wait_for()
    screenshot(page, "inbox_reply_text")

    page.get_by_role("tab", name="HTML-Ansicht (bereinigt)").click()
    html = page.get_by_test_id("stHtml").first
    html.wait_for()
    assert "keine" in html.inner_text()
    screenshot(page, "inbox_reply_html")
    assert page.locator("iframe[src*='evil.example']").count() == 0
    assert page.locator("img[src*='track.example']").count() == 0
    assert "alert(" not in html.inner_html()
    assert page.locator("[data-testid='stHtml'] script, [data-testid='stHtml'] iframe, [data-testid='stHtml'] img").count() == 0
    assert dialogs == []  # no script ran
    assert outside == [], outside  # no tracking pixel, no frame, nothing fetched from outside
