"""Enumerations of the domain and their German labels and colours.

This is the only place where a German UI word for a state lives. Values are English
snake_case and are what the database stores.
"""

from __future__ import annotations

from enum import StrEnum


class Labeled(StrEnum):
    """A str enum whose members carry a German label and a display colour."""

    @property
    def label(self) -> str:
        return LABELS[type(self)][self][0]

    @property
    def color(self) -> str:
        return LABELS[type(self)][self][1]

    @classmethod
    def choices(cls) -> list["Labeled"]:
        return list(cls)


class Role(Labeled):
    admin = "admin"
    coordinator = "coordinator"
    viewer = "viewer"


class Salutation(Labeled):
    herr = "herr"
    frau = "frau"
    none = "none"


class Gender(Labeled):
    male = "male"
    female = "female"
    diverse = "diverse"
    unspecified = "unspecified"


class GenderPreference(Labeled):
    any = "any"
    male = "male"
    female = "female"


class Transport(Labeled):
    car = "car"
    public_transport = "public_transport"


class Method(Labeled):
    VT = "VT"
    TP = "TP"
    AP = "AP"
    ST = "ST"


class PatientStatus(Labeled):
    open = "open"
    searching = "searching"
    in_therapy = "in_therapy"
    therapy_finished = "therapy_finished"
    search_cancelled = "search_cancelled"
    therapy_cancelled = "therapy_cancelled"


class TherapistStatus(Labeled):
    active = "active"
    blocked = "blocked"
    inactive = "inactive"


class CoordinatesSource(Labeled):
    arztsuche = "arztsuche"
    geocoded = "geocoded"
    plz_centroid = "plz_centroid"
    manual = "manual"
    missing = "missing"


class SearchStatus(Labeled):
    active = "active"
    successful = "successful"
    paused = "paused"
    cancelled = "cancelled"


class InquiryChannel(Labeled):
    email = "email"
    phone = "phone"


class InquiryStatus(Labeled):
    draft = "draft"
    queued = "queued"
    sent = "sent"
    answered = "answered"
    expired = "expired"
    cancelled = "cancelled"


# Open: unsent (draft, queued) or sent and unanswered; the inquiry still waits for an answer.
OPEN_INQUIRY_STATUSES = (InquiryStatus.draft, InquiryStatus.queued, InquiryStatus.sent)


class InquiryOrigin(Labeled):
    manual = "manual"
    planner = "planner"
    nightly = "nightly"


class ResponseType(Labeled):
    all_accepted = "all_accepted"
    partly_accepted = "partly_accepted"
    all_rejected = "all_rejected"
    no_response = "no_response"
    waitlisted = "waitlisted"  # no acceptance, at least one waiting-list place


class Outcome(Labeled):
    pending = "pending"
    accepted = "accepted"
    rejected_capacity = "rejected_capacity"
    rejected_unsuitable = "rejected_unsuitable"
    rejected_other = "rejected_other"
    no_response = "no_response"
    no_show = "no_show"
    in_sessions = "in_sessions"
    waitlisted = "waitlisted"


class InquiryMark(Labeled):
    """Marks shown next to an inquiry's or a member's state (matching)."""

    reduced = "reduced"
    withdrawn = "withdrawn"
    conflict = "conflict"
    conflict_resolved = "conflict_resolved"
    follow_up_due = "follow_up_due"
    needs_attention = "needs_attention"
    placed = "placed"


class EmailState(Labeled):
    draft = "draft"
    queued = "queued"
    sending = "sending"
    sent = "sent"
    failed = "failed"
    cancelled = "cancelled"


class CallState(Labeled):
    scheduled = "scheduled"
    done = "done"
    failed = "failed"
    cancelled = "cancelled"


class CallPurpose(Labeled):
    inquiry = "inquiry"
    follow_up = "follow_up"
    patient = "patient"
    other = "other"


class CallResult(Labeled):
    """What a coordinator says after dialling (issue 10, point 5)."""

    reached = "reached"
    not_reached = "not_reached"
    busy = "busy"
    voicemail = "voicemail"
    callback = "callback"
    wrong_number = "wrong_number"


class ImportChangeKind(Labeled):
    new = "new"
    changed = "changed"
    delisted = "delisted"


class ReviewState(Labeled):
    pending = "pending"
    applied = "applied"
    rejected = "rejected"


class ImportRunStatus(Labeled):
    running = "running"
    done = "done"
    failed = "failed"
    skipped = "skipped"


class JobResult(Labeled):
    running = "running"
    ok = "ok"
    error = "error"


# (label, colour) per member. Colours are CSS names Streamlit badges understand
# (blue, green, orange, red, violet, gray, primary).
LABELS: dict[type, dict] = {
    Role: {
        Role.admin: ("Administrator:in", "red"),
        Role.coordinator: ("Koordinator:in", "blue"),
        Role.viewer: ("Lesezugriff", "gray"),
    },
    Salutation: {
        Salutation.herr: ("Herr", "gray"),
        Salutation.frau: ("Frau", "gray"),
        Salutation.none: ("keine Anrede", "gray"),
    },
    Gender: {
        Gender.male: ("männlich", "gray"),
        Gender.female: ("weiblich", "gray"),
        Gender.diverse: ("divers", "gray"),
        Gender.unspecified: ("keine Angabe", "gray"),
    },
    GenderPreference: {
        GenderPreference.any: ("egal", "gray"),
        GenderPreference.male: ("männlich", "gray"),
        GenderPreference.female: ("weiblich", "gray"),
    },
    Transport: {
        Transport.car: ("Auto", "gray"),
        Transport.public_transport: ("ÖPNV", "gray"),
    },
    Method: {
        Method.VT: ("Verhaltenstherapie (VT)", "blue"),
        Method.TP: ("Tiefenpsychologisch fundierte Psychotherapie (TP)", "violet"),
        Method.AP: ("Analytische Psychotherapie (AP)", "orange"),
        Method.ST: ("Systemische Therapie (ST)", "green"),
    },
    PatientStatus: {
        PatientStatus.open: ("offen", "gray"),
        PatientStatus.searching: ("auf der Suche", "blue"),
        PatientStatus.in_therapy: ("in Therapie", "green"),
        PatientStatus.therapy_finished: ("Therapie abgeschlossen", "violet"),
        PatientStatus.search_cancelled: ("Suche abgebrochen", "red"),
        PatientStatus.therapy_cancelled: ("Therapie abgebrochen", "orange"),
    },
    TherapistStatus: {
        TherapistStatus.active: ("aktiv", "green"),
        TherapistStatus.blocked: ("gesperrt", "red"),
        TherapistStatus.inactive: ("inaktiv", "gray"),
    },
    CoordinatesSource: {
        CoordinatesSource.arztsuche: ("aus 116117", "green"),
        CoordinatesSource.geocoded: ("geokodiert", "green"),
        CoordinatesSource.plz_centroid: ("PLZ-Mittelpunkt (ungefähr)", "orange"),
        CoordinatesSource.manual: ("von Hand", "blue"),
        CoordinatesSource.missing: ("unbekannt", "red"),
    },
    SearchStatus: {
        SearchStatus.active: ("aktiv", "blue"),
        SearchStatus.successful: ("erfolgreich", "green"),
        SearchStatus.paused: ("pausiert", "orange"),
        SearchStatus.cancelled: ("abgebrochen", "gray"),
    },
    InquiryChannel: {
        InquiryChannel.email: ("E-Mail", "blue"),
        InquiryChannel.phone: ("Telefon", "violet"),
    },
    InquiryStatus: {
        InquiryStatus.draft: ("Entwurf", "gray"),
        InquiryStatus.queued: ("in Warteschlange", "orange"),
        InquiryStatus.sent: ("gesendet", "blue"),
        InquiryStatus.answered: ("beantwortet", "green"),
        InquiryStatus.expired: ("abgelaufen", "red"),
        InquiryStatus.cancelled: ("storniert", "gray"),
    },
    InquiryOrigin: {
        InquiryOrigin.manual: ("von Hand", "gray"),
        InquiryOrigin.planner: ("Regionalplanung", "blue"),
        InquiryOrigin.nightly: ("Vorschlag der Nacht", "violet"),
    },
    ResponseType: {
        ResponseType.all_accepted: ("vollständige Annahme", "green"),
        ResponseType.partly_accepted: ("teilweise Annahme", "blue"),
        ResponseType.all_rejected: ("vollständige Ablehnung", "red"),
        ResponseType.no_response: ("keine Antwort", "gray"),
        ResponseType.waitlisted: ("Warteliste", "blue"),
    },
    Outcome: {
        Outcome.pending: ("ausstehend", "gray"),
        Outcome.accepted: ("angenommen", "green"),
        Outcome.rejected_capacity: ("abgelehnt (Kapazität)", "orange"),
        Outcome.rejected_unsuitable: ("abgelehnt (nicht geeignet)", "red"),
        Outcome.rejected_other: ("abgelehnt (sonstiges)", "orange"),
        Outcome.no_response: ("keine Antwort", "gray"),
        Outcome.no_show: ("nicht erschienen", "red"),
        Outcome.in_sessions: ("in Sitzungen", "violet"),
        Outcome.waitlisted: ("auf Warteliste", "blue"),
    },
    InquiryMark: {
        InquiryMark.reduced: ("reduziert", "orange"),
        InquiryMark.withdrawn: ("zurückgezogen", "gray"),
        InquiryMark.conflict: ("Konflikt", "red"),
        InquiryMark.conflict_resolved: ("Konflikt gelöst", "gray"),
        InquiryMark.follow_up_due: ("Nachfassen fällig", "orange"),
        InquiryMark.needs_attention: ("bitte prüfen", "red"),
        InquiryMark.placed: ("vermittelt", "green"),
    },
    EmailState: {
        EmailState.draft: ("Entwurf", "gray"),
        EmailState.queued: ("in Warteschlange", "orange"),
        EmailState.sending: ("wird gesendet", "blue"),
        EmailState.sent: ("gesendet", "green"),
        EmailState.failed: ("fehlgeschlagen", "red"),
        EmailState.cancelled: ("storniert", "gray"),
    },
    CallState: {
        CallState.scheduled: ("geplant", "blue"),
        CallState.done: ("erledigt", "green"),
        CallState.failed: ("nicht erreicht", "red"),
        CallState.cancelled: ("abgesagt", "gray"),
    },
    CallPurpose: {
        CallPurpose.inquiry: ("Anfrage", "blue"),
        CallPurpose.follow_up: ("Nachfassen", "orange"),
        CallPurpose.patient: ("Patient:in", "violet"),
        CallPurpose.other: ("Sonstiges", "gray"),
    },
    CallResult: {
        CallResult.reached: ("erreicht", "green"),
        CallResult.not_reached: ("nicht erreicht", "red"),
        CallResult.busy: ("besetzt", "orange"),
        CallResult.voicemail: ("Anrufbeantworter (Nachricht hinterlassen)", "orange"),
        CallResult.callback: ("Rückruf vereinbart", "blue"),
        CallResult.wrong_number: ("falsche Nummer", "red"),
    },
    ImportChangeKind: {
        ImportChangeKind.new: ("neu", "green"),
        ImportChangeKind.changed: ("geändert", "blue"),
        ImportChangeKind.delisted: ("nicht mehr gelistet", "red"),
    },
    ReviewState: {
        ReviewState.pending: ("zu prüfen", "orange"),
        ReviewState.applied: ("übernommen", "green"),
        ReviewState.rejected: ("verworfen", "gray"),
    },
    ImportRunStatus: {
        ImportRunStatus.running: ("läuft", "blue"),
        ImportRunStatus.done: ("fertig", "green"),
        ImportRunStatus.failed: ("fehlgeschlagen", "red"),
        ImportRunStatus.skipped: ("übersprungen (bereits eingelesen)", "gray"),
    },
    JobResult: {
        JobResult.running: ("läuft", "blue"),
        JobResult.ok: ("erfolgreich", "green"),
        JobResult.error: ("Fehler", "red"),
    },
}

# Fixed symptom list (docs/architecture.md, "Domain model"), 30 values in 6 groups.
SYMPTOM_GROUPS: dict[str, list[str]] = {
    "Häufig": [
        "Depression / Niedergeschlagenheit",
        "Ängste / Panikattacken",
        "Burnout / Erschöpfung",
        "Schlafstörungen",
        "Stress / Überforderung",
    ],
    "Stimmung": [
        "Trauer / Verlust",
        "Reizbarkeit / Wutausbrüche",
        "Stimmungsschwankungen",
        "Innere Leere",
        "Einsamkeit",
    ],
    "Denken": [
        "Sorgen / Grübeln",
        "Selbstzweifel",
        "Konzentrationsprobleme",
        "Negative Gedanken",
        "Entscheidungsschwierigkeiten",
    ],
    "Körper": [
        "Psychosomatische Beschwerden",
        "Chronische Schmerzen",
        "Essstörungen",
        "Suchtprobleme (Alkohol/Drogen)",
        "Sexuelle Probleme",
    ],
    "Beziehungen": [
        "Beziehungsprobleme",
        "Familienkonflikte",
        "Sozialer Rückzug",
        "Mobbing",
        "Trennungsschmerz",
    ],
    "Besondere Belastungen": [
        "Traumatische Erlebnisse",
        "Zwänge",
        "Selbstverletzung",
        "Suizidgedanken",
        "Identitätskrise",
    ],
}
SYMPTOMS: list[str] = [s for group in SYMPTOM_GROUPS.values() for s in group]

# Nouns counted on screens and in messages: (singular, plural) for formatting.plural.
NOUNS: dict[str, tuple[str, str]] = {
    "patient": ("Patient:in", "Patient:innen"),
    "therapist": ("Therapeut:in", "Therapeut:innen"),
    "search": ("Platzsuche", "Platzsuchen"),
    "inquiry": ("Anfrage", "Anfragen"),
    "row": ("Zeile", "Zeilen"),
    "conflict": ("Konflikt", "Konflikte"),
    "person": ("Person", "Personen"),
    "email": ("E-Mail", "E-Mails"),
    "suggestion": ("Vorschlag", "Vorschläge"),
    "attempt": ("Versuch", "Versuche"),
    "duplicate": ("mögliche Dublette", "mögliche Dubletten"),
    "entry": ("Eintrag", "Einträge"),
    "account": ("Konto", "Konten"),
}

# Words used on several screens (navigation, common buttons, job-runner status).
NAV_SECTIONS = {"work": "Arbeit", "master_data": "Stammdaten", "admin": "Verwaltung"}
PAGE_TITLES = {
    "home": "Übersicht",
    "calls": "Anrufliste",
    "matching": "Vermittlung",
    "outbox": "Postausgang",
    "inbox": "Posteingang",
    "patients": "Patient:innen",
    "therapists": "Therapeut:innen",
    "map": "Karte",
    "imports": "Importe",
    "users": "Benutzer",
    "audit": "Protokoll",
    "privacy": "Datenschutz",
}


# --------------------------------------------------------------------------- audit actions

# Short labels an entity's own history uses (the record is already named on the screen).
HISTORY_ACTIONS: dict[str, str] = {
    "patient.create": "Angelegt",
    "patient.update": "Geändert",
    "patient.exclusion_add": "Therapeut:in ausgeschlossen",
    "patient.exclusion_remove": "Ausschluss aufgehoben",
    "patient.export": "Exportiert",
    "patient.import": "Importiert",
    "therapist.create": "Angelegt",
    "therapist.update": "Geändert",
    "therapist.block": "Gesperrt",
    "therapist.unblock": "Entsperrt",
    "therapist.deactivate": "Inaktiv gesetzt",
    "therapist.export": "Exportiert",
    "therapist.import": "Importiert",
    "patient.contact_log": "Kontaktprotokoll erstellt",
    "therapist.import_update": "Aus Import (116117) aktualisiert",
    "therapist.import_delisted": "Nicht mehr in der Arztsuche gelistet",
}

_ENTITY_PREFIX = {"patient": "Patient:in", "therapist": "Therapeut:in"}

# Every audit action's German label for the audit log; a test scans core for audit.record
# calls and checks each action has one.
AUDIT_ACTIONS: dict[str, str] = {
    "login.ok": "Anmeldung",
    "login.failed": "Anmeldung fehlgeschlagen",
    "login.locked": "Konto gesperrt (zu viele Fehlversuche)",
    "login.refused_locked": "Anmeldung abgewiesen (gesperrt)",
    "login.refused_inactive": "Anmeldung abgewiesen (deaktiviert)",
    "login.unknown_user": "Anmeldung mit unbekanntem Namen",
    "login.throttled": "Anmeldung abgewiesen (Wartezeit nach Fehlversuchen)",
    "user.unlock": "Sperre aufgehoben",
    "logout": "Abmeldung",
    "user.create": "Benutzer angelegt",
    "user.change_role": "Rolle geändert",
    "user.disable": "Benutzer deaktiviert",
    "user.enable": "Benutzer aktiviert",
    "user.reset_password": "Passwort zurückgesetzt",
    "user.change_own_password": "Eigenes Passwort geändert",
    "email.create": "E-Mail erstellt",
    "email.approve": "E-Mail freigegeben",
    "email.edit": "E-Mail bearbeitet",
    "email.cancel": "E-Mail storniert",
    "email.retry": "E-Mail erneut versucht",
    "email.resend": "E-Mail erneut gesendet",
    "email.sent": "E-Mail versendet",
    "email.failed": "E-Mail-Versand fehlgeschlagen",
    "document.add": "Dokument angehängt",
    "document.delete": "Dokument entfernt",
    "call.follow_up": "Nachfass-Anruf geplant",
    "plan.discard": "Vorschläge verworfen",

    "search.start": "Platzsuche gestartet",
    "search.pause": "Platzsuche pausiert",
    "search.resume": "Platzsuche fortgesetzt",
    "search.cancel": "Platzsuche abgebrochen",
    "search.succeed": "Platzsuche erfolgreich",
    "search.note": "Notiz zur Platzsuche",

    "inquiry.create": "Anfrage erstellt",
    "inquiry.send": "Anfrage gesendet",
    "inquiry.sent": "Anfrage zugestellt",
    "inquiry.drop_members": "Patient:innen aus Anfrage genommen",
    "inquiry.cancel": "Anfrage storniert",
    "inquiry.withdraw": "Patient:in aus Anfrage zurückgezogen",
    "inquiry.answer": "Antwort erfasst",
    "inquiry.conflict": "Konflikt: doppelte Zusage",
    "inquiry.resolve_conflict": "Konflikt gelöst",
    "inquiry.later_outcome": "Ergebnis nach Zusage erfasst",
    "inquiry.expire": "Anfrage abgelaufen",
    "search.placed": "Patient:in vermittelt",
    "search.exclude": "Therapeut:in für Platzsuche ausgeschlossen",
    "search.success_confirmed": "Erfolg bestätigt",
    "call.inquiry": "Anruf für Anfrage geplant",
    "call.result": "Anruf-Ergebnis erfasst",
    "call.retry": "Nächster Anrufversuch geplant",
    "call.callback": "Rückruf geplant",
    "call.reschedule": "Anruf verschoben",
    "call.cancel": "Anruf abgesagt",
    "call.assign": "Anruf zugewiesen",
    "call.attention": "Anfrage braucht Aufmerksamkeit (Anrufe)",
    "therapist.phone_invalid": "Therapeut:in: Telefonnummer als falsch markiert",
    "plan.nightly": "Vorschläge der Nacht vorbereitet",
    "plan.approve": "Vorschläge freigegeben",
    "import.run": "Import gelesen",
    "import.skipped": "Import übersprungen (bereits importiert)",
    "import.failed": "Import fehlgeschlagen",
    "import.reject": "Importänderungen abgelehnt",
    "import.assign": "Mehrdeutigen Importeintrag zugeordnet",
    "import.live": "Live-Abruf der Arztsuche",
    "patient.export_art15": "Patient:in: Auskunft nach Art. 15 DSGVO erstellt",
    "patient.anonymise": "Patient:in: anonymisiert",
    "read.patient": "Patient:in: Details angesehen",
    "read.email": "E-Mail mit Patientendaten angesehen",
    "read.reply": "Antwort einer Therapeut:in angesehen",
    "read.export": "Patient:in: Daten exportiert",
    "read.contact_log": "Patient:in: Kontaktprotokoll erstellt",
}
for _action, _label in HISTORY_ACTIONS.items():
    AUDIT_ACTIONS.setdefault(_action, f"{_ENTITY_PREFIX[_action.split('.', 1)[0]]}: {_label}")


# --------------------------------------------------------------------------- reports (Übersicht)

# Key figures: German label and a one-line help (what exactly is counted).
REPORT_FIGURES: dict[str, tuple[str, str]] = {
    "active_searches": ("Aktive Platzsuchen", "Laufende Platzsuchen am Ende des Zeitraums (ohne pausierte)."),
    "median_wait_days": ("Mittlere Wartezeit", "Median der Tage seit Beginn der laufenden Platzsuchen am Ende des Zeitraums."),
    "placements": ("Vermittlungen", "Platzsuchen mit einer Zusage im Zeitraum."),
    "median_days_to_placement": ("Tage bis zur Vermittlung", "Median der Tage vom Beginn der Platzsuche bis zur Zusage, für die Vermittlungen im Zeitraum."),
    "inquiries_awaiting": ("Anfragen warten auf Antwort", "Gesendete Anfragen ohne Antwort am Ende des Zeitraums."),
    "answer_rate_7d": ("Antwortquote (7 Tage)", "Anteil der im Zeitraum gesendeten Anfragen mit Antwort innerhalb von 7 Tagen (nur Anfragen, deren 7 Tage um sind)."),
    "acceptance_rate": ("Zusagequote", "Anteil der Zusagen an allen im Zeitraum erfassten Antworten je Patient:in (Zusage oder Absage)."),
    "contactable_now": ("Jetzt anfragbar", "Aktive Therapeut:innen mit E-Mail oder Telefon, nicht in der Abkühlungsphase, ohne offene Anfrage (Stand jetzt, ohne Vergleich)."),
}

# "Heute zu tun": (singular, plural) per item; the number goes in front.
REPORT_TODOS: dict[str, tuple[str, str]] = {
    "calls_overdue": ("überfälliger Anruf", "überfällige Anrufe"),
    "calls_today": ("Anruf heute", "Anrufe heute"),
    "answers_to_record": ("Antwort im Posteingang wartet auf das Erfassen", "Antworten im Posteingang warten auf das Erfassen"),
    "inbox_unassigned": ("Nachricht im Posteingang nicht zugeordnet", "Nachrichten im Posteingang nicht zugeordnet"),
    "follow_up_due": ("Anfrage seit über 7 Tagen ohne Antwort – nachfassen oder Antwort erfassen",
                      "Anfragen seit über 7 Tagen ohne Antwort – nachfassen oder Antwort erfassen"),
    "conflicts": ("Konflikt (doppelte Zusage) zu klären", "Konflikte (doppelte Zusage) zu klären"),
    "needs_attention": ("Anfrage braucht Aufmerksamkeit", "Anfragen brauchen Aufmerksamkeit"),
    "emails_failed": ("E-Mail fehlgeschlagen", "E-Mails fehlgeschlagen"),
    "email_drafts": ("E-Mail-Entwurf wartet auf Freigabe", "E-Mail-Entwürfe warten auf Freigabe"),
    "inquiry_drafts": ("Anfrage-Entwurf wartet auf das Senden", "Anfrage-Entwürfe warten auf das Senden"),
    "nightly_suggestions": ("Vorschlag der Nacht zur Freigabe", "Vorschläge der Nacht zur Freigabe"),
    "import_changes": ("Änderung aus dem 116117-Import zu prüfen", "Änderungen aus dem 116117-Import zu prüfen"),
    "searches_without_inquiry": ("Platzsuche ohne offene Anfrage", "Platzsuchen ohne offene Anfrage"),
}

# Charts: titles, axis titles and series names.
REPORT_CHARTS: dict[str, str] = {
    "wait_title": "Wartezeit der laufenden Platzsuchen",
    "wait_x": "Wartezeit",
    "wait_y": "Platzsuchen",
    "placements_title": "Vermittlungen pro Woche",
    "week": "Woche ab",
    "placements_y": "Vermittlungen",
    "answers_title": "Antworten pro Woche nach Art",
    "answers_y": "Antworten",
    "answer_type": "Art der Antwort",
    "funnel_title": "Von der Anfrage zum Therapieplatz",
    "funnel_x": "Anfragen",
    "funnel_step": "Schritt",
    "regions_title": "Vermittlungen und Wartezeit nach PLZ-Region",
    "region": "PLZ-Region",
    "region_placements": "Vermittlungen",
    "region_active": "Aktive Platzsuchen",
    "region_median_wait": "Mittlere Wartezeit (Tage)",
    "region_map": "Karte",
}
REPORT_FUNNEL_STEPS: dict[str, str] = {
    "sent": "gesendet",
    "answered": "beantwortet",
    "accepted": "mit Zusage",
    "successful": "erfolgreich vermittelt",
}
# Waiting-time bins of active searches: (label, from day inclusive, to day exclusive or None).
WAIT_BINS: tuple[tuple[str, int, int | None], ...] = (
    ("unter 4 Wochen", 0, 28),
    ("4–8 Wochen", 28, 56),
    ("8–13 Wochen", 56, 91),
    ("3–6 Monate", 91, 182),
    ("6–12 Monate", 182, 365),
    ("über 1 Jahr", 365, None),
)
# Search-box result kinds.
SEARCH_HIT_KINDS: dict[str, str] = {
    "patient": "Patient:in",
    "therapist": "Therapeut:in",
    "search": "Platzsuche",
    "inquiry": "Anfrage",
}

# --------------------------------------------------------------------------- inbox (Posteingang)


class InboxKind(Labeled):
    reply = "reply"
    bounce = "bounce"
    auto_reply = "auto_reply"
    other = "other"


class InboxState(Labeled):
    new = "new"  # matched or not, nobody has looked at it yet
    assigned = "assigned"  # a coordinator assigned it by hand
    dismissed = "dismissed"  # nothing to do (spam, newsletter, handled elsewhere)
    recorded = "recorded"  # the answer in it was recorded on its inquiry


class InboxMatch(Labeled):
    header = "header"  # In-Reply-To / References named a mail we sent
    subject = "subject"  # the inquiry reference ("A253") in the subject
    sender = "sender"  # the sender's address, a therapist with exactly one open inquiry
    patient = "patient"  # a patient's address (or a reply to a patient mail)
    manual = "manual"  # assigned by a coordinator
    none = "none"  # Nicht zugeordnet


LABELS[InboxKind] = {
    InboxKind.reply: ("Antwort", "blue"),
    InboxKind.bounce: ("Rückläufer (Bounce)", "red"),
    InboxKind.auto_reply: ("Abwesenheitsnotiz", "orange"),
    InboxKind.other: ("Sonstige", "gray"),
}
LABELS[InboxState] = {
    InboxState.new: ("neu", "blue"),
    InboxState.assigned: ("zugeordnet", "violet"),
    InboxState.dismissed: ("erledigt (verworfen)", "gray"),
    InboxState.recorded: ("Antwort erfasst", "green"),
}
LABELS[InboxMatch] = {
    InboxMatch.header: ("über die Antwort-Kopfzeilen", "green"),
    InboxMatch.subject: ("über die Nummer im Betreff", "green"),
    InboxMatch.sender: ("über die Absenderadresse", "orange"),
    InboxMatch.patient: ("Patient:in (Absenderadresse)", "violet"),
    InboxMatch.manual: ("von Hand zugeordnet", "violet"),
    InboxMatch.none: ("Nicht zugeordnet", "gray"),
}

AUDIT_ACTIONS.update({
    "inbox.assign": "Posteingang: Nachricht zugeordnet",
    "inbox.dismiss": "Posteingang: Nachricht verworfen",
    "inbox.record": "Posteingang: Antwort aus Nachricht erfasst",
    "inbox.bounce": "Posteingang: Rückläufer verarbeitet",
    "email.address_invalid": "E-Mail-Adresse als ungültig markiert",
    "email.address_valid": "E-Mail-Adresse wieder freigegeben",
})
