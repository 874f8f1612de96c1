"""E-mail templates (German, escaped, singular/plural, legal footer) and the MIME message."""

from __future__ import annotations

from datetime import date, datetime, timezone
from email import message_from_bytes, policy
from types import SimpleNamespace as NS

import pytest

from core.mail import templates as mt
from core.adapters.smtp import Attachment, OutgoingMail, build_message, new_message_id, parse_eml
from core.platform.config import load_settings
from core.platform.vocab import Gender, Salutation

TODAY = date(2026, 11, 23)
SETTINGS = load_settings(
    environ={
        "COMPANY_NAME": "Platzfinder GmbH",
        "COMPANY_ADDRESS": "Lindenstraße 5, 10969 Berlin",
        "COMPANY_REGISTER": "Amtsgericht Charlottenburg, HRB 12345",
        "COMPANY_MANAGING_DIRECTOR": "Jana Özdemir",
        "PRIVACY_SENTENCE": "Ihre Daten verarbeiten wir nach Art. 9 DSGVO.",
    },
    env_file=None,
)
EVIL = "<script>alert(1)</script>"


def therapist(**kw):
    base = dict(salutation=Salutation.frau, title="Dr.", first_name="Eva", last_name="Weber", full_name="Dr. Eva Weber",
                street="Hauptstraße 1", plz="10115", city="Berlin", phone="030 123456", email="weber@praxis.de",
                website="", phone_hours="Mo 09:00-12:00; Mi 14:00-15:00", knows_us=False, prefers_group=False)
    base.update(kw)
    return NS(**base)


def patient(**kw):
    base = dict(salutation=Salutation.frau, first_name="Erika", last_name="Muster", birth_date=date(1990, 11, 24),
                gender=Gender.female, symptoms=["Schlafstörungen", "Ängste / Panikattacken"], insurer="AOK Nordost",
                prior_therapy=True, prior_therapy_end=date(2022, 3, 12), open_to_group=None,
                availability="Mo 9-12, 14:00-15:30; Sa 10-11", email="erika@example.org", phone="0170 1", max_distance_km=None)
    base.update(kw)
    return NS(**base)


def inquiry(n=1, **tkw):
    pats = [(i, patient(first_name=f"Name{i}", last_name=EVIL)) for i in range(1, n + 1)]
    return mt.render(mt.THERAPIST_INQUIRY, mt.inquiry_context(SETTINGS, inquiry_id=42, therapist=therapist(**tkw),
                                                               patients=pats, today=TODAY))


def test_inquiry_singular():
    r = inquiry(1, knows_us=True)
    assert r.subject == "Anfrage Psychotherapieplatz – Ref. A42"
    assert "einen Psychotherapieplatz für eine Person" in r.text
    assert "Person 1 – Ref. A42-1" in r.text
    assert "Personen" not in r.text.split("Person 1")[0]


def test_inquiry_plural_with_every_patient_and_full_availability():
    r = inquiry(3)
    assert r.subject == "Anfrage Psychotherapieplätze – Ref. A42"
    assert "Psychotherapieplätze für 3 Personen" in r.text
    for i in (1, 2, 3):
        assert f"Ref. A42-{i}" in r.text and f"Ref. A42-{i}" in r.html
    # every range of every day, full day names (upstream showed only the first slot per day)
    assert "Montag: 09:00–12:00, 14:00–15:30 Uhr" in r.text
    assert "Samstag: 10:00–11:00 Uhr" in r.text
    assert "Alter: 35 Jahre" in r.text  # birthday tomorrow: still 35
    assert "Frühere Psychotherapie: ja, beendet am 12.03.2022" in r.text
    assert "Offen für Gruppentherapie: keine Angabe" in r.text
    assert "Krankenversicherung: AOK Nordost" in r.text
    assert "Anliegen: Schlafstörungen, Ängste / Panikattacken" in r.text


def test_inquiry_is_pseudonymous():
    r = inquiry(2)
    for part in (r.text, r.html, r.subject):
        assert "Name1" not in part and "Name2" not in part and "script" not in part and "Muster" not in part


def test_introduction_only_when_the_therapist_does_not_know_us():
    assert "Kurz zu uns" in inquiry(1, knows_us=False).text
    assert "Kurz zu uns" not in inquiry(1, knows_us=True).text
    assert "Kurz zu uns" not in inquiry(1, knows_us=True).html


def test_legal_footer_from_settings_in_both_parts():
    r = inquiry(1)
    for part in (r.text, r.html):
        assert "Platzfinder GmbH" in part
        assert "Lindenstraße 5, 10969 Berlin" in part
        assert "Amtsgericht Charlottenburg, HRB 12345" in part
        assert "Geschäftsführung: Jana Özdemir" in part
        assert "Art. 9 DSGVO" in part
    assert "\n-- \n" in r.text  # standard signature separator


def test_salutations():
    assert inquiry(1, salutation=Salutation.herr, title=None, last_name="Roth").text.startswith("Sehr geehrter Herr Roth,")
    assert inquiry(1, salutation=Salutation.none, title=None, first_name="Kim", last_name="Lee").text.startswith(
        "Guten Tag Kim Lee,"
    )


def test_reminder_mentions_the_first_date():
    ctx = mt.inquiry_context(SETTINGS, inquiry_id=7, therapist=therapist(), patients=[(1, patient()), (2, patient())],
                             today=TODAY, sent_on=date(2026, 11, 16))
    r = mt.render(mt.THERAPIST_REMINDER, ctx)
    assert r.subject == "Erinnerung: Anfrage Psychotherapieplätze – Ref. A7"
    assert "am 16.11.2026 haben wir Sie für 2 Personen angefragt" in r.text


def test_thanks_escapes_names_in_html_only():
    ctx = mt.thanks_context(SETTINGS, inquiry_id=9, therapist=therapist(), accepted=[(2, patient(first_name=EVIL))], today=TODAY)
    r = mt.render(mt.THERAPIST_THANKS, ctx)
    assert r.subject == "Vielen Dank für Ihre Zusage – Ref. A9"
    assert "A9-2: <script>alert(1)</script> Muster" in r.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.html and "<script>" not in r.html


@pytest.mark.parametrize("template", [mt.PATIENT_PLACE_FOUND_EMAIL, mt.PATIENT_PLACE_FOUND_PHONE])
def test_place_found_variants(template):
    ctx = mt.patient_context(SETTINGS, patient=patient(first_name=EVIL), therapist=therapist(), today=TODAY,
                             forms=["Anmeldebogen Müller.pdf"])
    r = mt.render(template, ctx)
    assert r.subject == "Therapieplatz gefunden – bitte melden Sie sich zeitnah"
    assert "Dr. Eva Weber" in r.text and "030 123456" in r.text and "Hauptstraße 1" in r.text
    assert "Im Anhang finden Sie ein Formular der Praxis: Anmeldebogen Müller.pdf" in r.text
    assert "<script>" not in r.html and "&lt;script&gt;" in r.html
    if template == mt.PATIENT_PLACE_FOUND_PHONE:
        assert "Telefonische Erreichbarkeit" in r.text and "Mittwoch: 14:00–15:00 Uhr" in r.text
        assert "Rufen Sie die Praxis" in r.text
    else:
        assert "weber@praxis.de" in r.text and "Betreff: Therapieplatz gemäß Absprache mit Platzfinder GmbH" in r.text


def test_place_found_phone_without_phone_hours_and_group_variant():
    ctx = mt.patient_context(SETTINGS, patient=patient(), therapist=therapist(phone_hours=None, prefers_group=True),
                             today=TODAY, forms=["A.pdf", "B.pdf"])
    r = mt.render(mt.PATIENT_PLACE_FOUND_PHONE, ctx)
    assert "Keine Sprechzeiten bekannt" in r.text
    assert "Platz in einer Gruppentherapie" in r.text
    assert "2 Formulare der Praxis: A.pdf und B.pdf" in r.text


def test_search_started_and_status_update():
    r = mt.render(mt.PATIENT_SEARCH_STARTED, mt.patient_context(SETTINGS, patient=patient(), today=TODAY,
                                                                search_started_on=date(2026, 11, 20)))
    assert r.subject == "Ihre Therapieplatzsuche hat begonnen"
    assert "seit dem 20.11.2026" in r.text and "25 km" in r.text and "Telefonseelsorge" in r.text
    one = mt.render(mt.PATIENT_STATUS_UPDATE, mt.patient_context(SETTINGS, patient=patient(), today=TODAY,
                                                                 search_started_on=date(2026, 10, 1), therapists_asked=1,
                                                                 message="Kurze Info <b>fett</b>"))
    assert "1 Praxis für Sie angefragt" in one.text
    assert "Kurze Info &lt;b&gt;fett&lt;/b&gt;" in one.html
    many = mt.render(mt.PATIENT_STATUS_UPDATE, mt.patient_context(SETTINGS, patient=patient(), today=TODAY,
                                                                  search_started_on=date(2026, 10, 1), therapists_asked=1234))
    assert "1.234 Praxen" in many.text


def test_missing_value_fails_loudly():
    with pytest.raises(mt.TemplateError):
        mt.render(mt.THERAPIST_INQUIRY, {"footer": mt.footer_from_settings(SETTINGS)})


def test_every_message_template_has_both_parts():
    for name in mt.MESSAGE_TEMPLATES:
        assert (mt.TEMPLATES_DIR / f"{name}.html").exists() and (mt.TEMPLATES_DIR / f"{name}.txt").exists()


def test_unreadable_availability_is_shown_not_dropped():
    av = mt.availability("Montags vormittags")
    assert av.raw == "Montags vormittags" and not av.days
    assert mt.availability("").empty


def test_mime_message_structure_and_encodings():
    mail = OutgoingMail(
        from_address="vermittlung@example.de", from_name="Vermittlung Süd", to_address="weber@praxis.de",
        to_name="Dr. Jürgen Weiß", subject="Anfrage für Ärztinnen – Ref. A1", text="Grüße\n", html="<p>Grüße</p>\n",
        message_id=new_message_id("vermittlung@example.de"), date=datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc),
        reply_to="vermittlung@example.de", attachments=(Attachment("Anmeldebogen Müller.pdf", b"%PDF-1.4\n"),),
    )
    raw = build_message(mail).as_bytes()
    assert all(b < 128 for b in raw), "7-bit clean (quoted-printable, encoded words, RFC 2231)"
    assert b"filename*=utf-8''Anmeldebogen%20M%C3%BCller.pdf" in raw
    msg = message_from_bytes(raw, policy=policy.default)
    assert msg.get_content_type() == "multipart/mixed"
    assert msg.get_payload()[0].get_content_type() == "multipart/alternative"
    assert str(msg["Subject"]) == "Anfrage für Ärztinnen – Ref. A1"
    assert msg["Message-ID"].endswith("@example.de>")
    parsed = parse_eml(raw)
    assert parsed.text == "Grüße\n" and parsed.attachments == ("Anmeldebogen Müller.pdf",)
