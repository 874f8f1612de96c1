"""Vermittlung: region → contactable therapists → proposal with reasons → create and send;
the inquiry list with filters, answers, later outcomes and success; conflicts; the
regional planner; the nightly suggestions. Rules and SQL live in core (matching,
inquiries, planner); this page only shows and calls."""

from __future__ import annotations

from functools import partial
from typing import Any, Optional

import pandas as pd
import streamlit as st

from core.inbox import views as inbox_views
from core.inquiries import answers as inquiries_answers
from core.inquiries import closing
from core.inquiries import lifecycle as inquiries_lifecycle
from core.inquiries import loading as inquiry_loading
from core.inquiries import views as inquiry_views
from core.matching import contactable as matching_contactable
from core.matching import proposal_view as matching_proposal_view
from core.matching import regions as matching_regions
from core.planning import planner
from core.matching import rules
from core.platform.db import ConcurrentChange, read_session, run_unit_of_work, unit_of_work
from core.platform.formatting import count_of, format_date, format_datetime, format_km, format_number, plural
from core.platform.permissions import Permission
from core.platform.references import search_ref, therapist_ref
from core.platform.vocab import PAGE_TITLES, EmailState, InquiryChannel, InquiryMark, InquiryOrigin, InquiryStatus, Outcome
from ui import context, layout
from ui import registry_view as rv
from ui.selection import ID_COLUMN, selectable_table
from ui.text import md
from ui.auth import require_actor

actor = require_actor()
today, now = context.today(), context.now()
settings = context.settings()
can_edit = actor.can(Permission.edit)
show_sensitive = actor.can(Permission.view_sensitive)
TOAST = "mt_toast"
scope = partial(unit_of_work)

layout.header(
    PAGE_TITLES["matching"],
    "Therapeut:innen einer Region anfragen, Antworten erfassen, Konflikte klären, Regionalplanung und Vorschläge der Nacht. "
    "Entfernungen sind Luftlinie.",
)
if msg := st.session_state.pop(TOAST, None):
    st.toast(msg, icon=":material/check_circle:")

VIEWS = {
    "new": "Neue Anfrage",
    "inquiries": "Anfragen",
    "placements": "Zusagen & Konflikte",
    "planner": "Regionalplanung",
    "nightly": "Vorschläge der Nacht",
}
view = st.segmented_control(
    "Bereich", list(VIEWS), format_func=VIEWS.get, default="new", key="mt_view", bind="query-params",
    label_visibility="collapsed",
) or "new"


def _done(message: str) -> None:
    """After an action: a short confirmation, then the same screen with the new state (the
    selected record stays selected, see ui.selection)."""
    st.session_state[TOAST] = md(message)
    st.rerun()


def _read_only_note() -> None:
    if not can_edit:
        st.caption("Sie haben Lesezugriff: Anfragen ansehen ja, erstellen und ändern nein.")


def _show_inquiry_error(exc: inquiry_loading.InquiryError, names: Optional[dict[int, str]] = None) -> None:
    lines = [md(exc)]
    for sid, reasons in exc.reasons.items():
        if reasons:
            who = (names or {}).get(sid, search_ref(sid))
            lines.append(f"- **{md(who)}** ({search_ref(sid)}): " + md(" ".join(reasons)))
    st.error("\n".join(lines), icon=":material/error:")


def _region_from_inputs(prefix_key: str, radius_key: str) -> Optional[matching_regions.Region]:
    c1, c2, c3 = st.columns([1.2, 1, 3])
    text = c1.text_input(
        "PLZ-Region oder PLZ", key=prefix_key, bind="query-params", max_chars=5, placeholder="z. B. 10",
        help="Zwei Ziffern für eine PLZ-Region (z. B. 10 für Berlin-Mitte) – oder eine fünfstellige PLZ mit Umkreis.",
    )
    radius = c2.number_input("Umkreis (km)", min_value=0, max_value=200, step=5, key=radius_key,
                             help="0 = ganze PLZ-Region; sonst Luftlinie um die PLZ.")
    text = (text or "").strip()
    if not text:
        return None
    try:
        if radius:
            with read_session() as s:
                return matching_regions.region_around_plz(s, text, radius)
        return matching_regions.region_by_prefix(text, digits=settings.PLZ_PREFIX_DIGITS)
    except matching_regions.MatchingError as exc:
        c3.error(md(exc), icon=":material/error:")
        return None


# =========================================================================== new inquiry


def _proposal_panel(therapist_id: int) -> None:
    with read_session() as s:
        pv = matching_proposal_view.proposal_view(s, actor, therapist_id, today=today, settings=settings)
    st.subheader(f"Anfrage an {md(pv.therapist_name)} ({therapist_ref(therapist_id)})")
    channel = (
        "per E-Mail (über den Postausgang)" if pv.has_email
        else ("per Telefon (keine E-Mail-Adresse: ein Anruf kommt auf die Anrufliste)" if pv.has_phone
              else "nicht möglich – weder E-Mail-Adresse noch Telefonnummer")
    )
    st.caption(f"{md(pv.therapist_place)} · Anfrage {channel}")
    if pv.therapist_reasons:
        st.warning("Diese Therapeut:in kann jetzt nicht angefragt werden:\n\n" + "\n".join(f"- {md(r)}" for r in pv.therapist_reasons),
                   icon=":material/block:")
    names = {c.search_id: c.patient_name for c in pv.eligible + pv.rejected}
    if not pv.eligible:
        st.info("Keine passende Patient:in in Reichweite. Unter „Warum nicht?“ steht, woran es liegt.")
    else:
        st.markdown(
            f"**{plural(len(pv.eligible), 'passende Patient:in', 'passende Patient:innen')}**, längste Wartezeit zuerst; "
            f"vorgeschlagen sind die ersten {pv.max_size}. Haken setzen oder entfernen, Reihenfolge mit „Pos.“ ändern."
        )
        proposed = [c for c in pv.eligible if c.proposed]
        order = {c.search_id: i + 1 for i, c in enumerate(proposed)}
        table = rv.frame(
            [
                {
                    "Aufnehmen": c.proposed,
                    "Pos.": order.get(c.search_id),
                    ID_COLUMN: c.search_id,
                    "Platzsuche": search_ref(c.search_id),
                    "Patient:in": c.patient_name,
                    "PLZ": c.plz or "",
                    "Wartet (Tage)": c.waiting_days,
                    "Entfernung": format_km(c.distance_km),
                    "max. km": c.max_km,
                    **({"Alter": c.age} if show_sensitive else {}),
                }
                for c in pv.eligible
            ],
            ints=["Pos.", "Alter"],
        )
        edited = st.data_editor(
            table, key=f"mt_pick_{therapist_id}", hide_index=True, width="stretch", num_rows="fixed",
            disabled=[c for c in table.columns if c not in ("Aufnehmen", "Pos.")],
            column_config={
                "Aufnehmen": st.column_config.CheckboxColumn("Aufnehmen", width="small"),
                "Pos.": st.column_config.NumberColumn("Pos.", min_value=1, max_value=99, step=1, width="small"),
                ID_COLUMN: None,
                "Platzsuche": st.column_config.TextColumn("Platzsuche", width="small"),
                "Wartet (Tage)": st.column_config.NumberColumn("Wartet (Tage)", format="%d"),
                "max. km": st.column_config.NumberColumn("max. km", format="%d"),
            }, placeholder="–"
        )
        picked = edited[edited["Aufnehmen"]].copy()
        picked["_order"] = [p if pd.notna(p) else 1000 + i for i, p in enumerate(picked["Pos."])]
        chosen = [int(x) for x in picked.sort_values(["_order", "Wartet (Tage)"], ascending=[True, False])[ID_COLUMN]]
        st.caption(
            f"Gewählt: {len(chosen)} von höchstens {pv.max_size}"
            + (" – bitte Haken entfernen." if len(chosen) > pv.max_size else ".")
        )
        if can_edit and not pv.therapist_reasons:
            send_now = st.checkbox(
                "Gleich senden – " + ("die E-Mail geht über den Postausgang an die Praxis" if pv.has_email
                                      else "ein Anruf kommt auf die Anrufliste"),
                key=f"mt_send_now_{therapist_id}", value=False,
            )
            if st.button("Anfrage erstellen", key=f"mt_create_{therapist_id}", type="primary",
                         disabled=not chosen or len(chosen) > pv.max_size, icon=":material/send:"):
                try:
                    with unit_of_work() as s:
                        created = inquiries_lifecycle.create_inquiry(s, actor, therapist_id, chosen, today=today, now=now, settings=settings)
                        ref = inquiry_loading.reference(created.id)
                        message = f"Anfrage {ref} mit {count_of(len(chosen), 'patient')} erstellt."
                        if not send_now and created.channel == InquiryChannel.email:
                            message += " Der E-Mail-Entwurf liegt im Postausgang unter „Entwürfe“."
                        if send_now:
                            report = inquiries_lifecycle.send_inquiry(s, actor, created.id, today=today, now=now, settings=settings)
                            message = report.message or message
                    st.session_state.pop("mt_therapists", None)  # the therapist leaves the list now
                    st.query_params.pop("mt_therapist", None)
                    st.query_params["mt_inquiry"] = str(created.id)
                    _done(message)
                except inquiry_loading.InquiryError as exc:
                    _show_inquiry_error(exc, names)
    with st.expander(f"Warum nicht? ({count_of(pv.rejected_total, 'patient')} in der Nähe {'passt' if pv.rejected_total == 1 else 'passen'} nicht)",
                     icon=":material/help:"):
        if not pv.rejected:
            st.caption("In der Nähe (bis 1,5-mal die Wunschentfernung) gibt es keine weiteren aktiven Platzsuchen.")
        else:
            st.dataframe(
                pd.DataFrame(
                    [
                        {"Platzsuche": search_ref(c.search_id), "Patient:in": c.patient_name, "Wartet (Tage)": c.waiting_days,
                         "Entfernung": format_km(c.distance_km), "Gründe": " ".join(c.reasons)}
                        for c in pv.rejected
                    ]
                ),
                key=f"mt_why_{therapist_id}", hide_index=True, width="stretch",
                column_config={"Platzsuche": st.column_config.TextColumn("Platzsuche", width="small"),
                               "Gründe": st.column_config.TextColumn("Gründe", width="large")}, placeholder="–"
            )
            if pv.rejected_total > len(pv.rejected):
                st.caption(f"Gezeigt: die {len(pv.rejected)} am längsten Wartenden.")


def view_new() -> None:
    region = _region_from_inputs("mt_region", "mt_radius")
    if region is None:
        linked = st.query_params.get("mt_therapist", "")
        if linked.isdigit():  # opened from a link (e.g. the map's therapist card)
            _proposal_panel(int(linked))
            return
        st.info("Wählen Sie oben eine PLZ-Region (z. B. 10) oder eine PLZ mit Umkreis; dann erscheinen die "
                "Therapeut:innen, die jetzt angefragt werden können.", icon=":material/travel_explore:")
        return
    rv.reset_page_on_change(region, state_key="mt_region_sig", page_key="mt_page")
    page_no = rv.current_page("mt_page")
    with read_session() as s:
        page = matching_contactable.contactable_therapists(
            s, actor, region, today=today, offset=(page_no - 1) * rv.PAGE_SIZE, limit=rv.PAGE_SIZE
        )
    pages = max(1, -(-page.total // rv.PAGE_SIZE))
    line = f"**{plural(page.total, 'kontaktierbare Therapeut:in', 'kontaktierbare Therapeut:innen')}** · {md(region.label)}"
    hidden = []
    if page.hidden_pending:
        hidden.append(f"{format_number(page.hidden_pending)} mit offener Anfrage")
    if page.hidden_cooling:
        hidden.append(f"{format_number(page.hidden_cooling)} in der Abkühlungsphase")
    if hidden:
        line += " · ausgeblendet: " + ", ".join(hidden)
    if pages > 1:
        line += f" · Seite {page_no} von {pages}"
    st.markdown(line)
    if not page.rows:
        st.info("In dieser Region kann gerade niemand angefragt werden. Versuchen Sie eine Nachbarregion oder einen Umkreis.")
        return
    table = rv.frame(
        [
            {
                ID_COLUMN: r.id,
                "Kennung": therapist_ref(r.id),
                "Name": f"{r.last_name}, {' '.join(p for p in (r.title, r.first_name) if p)}",
                "PLZ": r.plz or "",
                "Ort": r.city or "",
                "Verfahren": r.methods,
                "Pot. verfügbar": r.potentially_available,
                "Kennt uns": r.knows_us,
                "E-Mail": (r.email or "") if show_sensitive else r.has_email,
                "Praxis": r.practice_size if r.practice_size > 1 else None,
                **({"Entfernung": format_km(r.distance_km)} if region.is_radius else {}),
            }
            for r in page.rows
        ],
        ints=["Praxis"],
    )
    therapist_id = selectable_table(
        table, key="mt_therapists", param="mt_therapist", width="stretch", placeholder="–",
        column_config={
            "Kennung": st.column_config.TextColumn("Kennung", width="small"),
            "Pot. verfügbar": st.column_config.CheckboxColumn("Pot. verfügbar", help="potenziell verfügbar"),
            "Kennt uns": st.column_config.CheckboxColumn("Kennt uns"),
            "Praxis": st.column_config.NumberColumn("Praxis", format="%d", help="Therapeut:innen mit derselben E-Mail-Adresse (einmal gezeigt)"),
        },
    )
    rv.pager(page.total, key="mt_page")
    if therapist_id is None:
        st.caption("Wählen Sie eine Zeile: Dann erscheint der Vorschlag für diese Therapeut:in.")
        return
    _proposal_panel(therapist_id)


# =========================================================================== inquiries


def _marks(r: inquiry_views.InquiryRow) -> list[str]:
    out = []
    if r.reduced:
        out.append(InquiryMark.reduced.label)
    if r.follow_up_due:
        out.append(InquiryMark.follow_up_due.label)
    if r.needs_attention:
        out.append(InquiryMark.needs_attention.label)
    return out


def _answer_form(detail: inquiry_views.InquiryDetail) -> None:
    options = list(rules.ANSWER_OUTCOMES)
    with st.form(f"mt_answer_{detail.row.id}"):
        st.markdown("**Antwort erfassen** – ein Ergebnis je Patient:in")
        choices: dict[int, Any] = {}
        notes: dict[int, str] = {}
        until: dict[int, Any] = {}
        for m in detail.answer_members:
            c1, c2, c3 = st.columns([2, 2, 1.4])
            label = f"{m.position}. {md(m.patient_name)}" + (" (zurückgezogen)" if m.answer_optional else "") + f" – {m.search_ref}"
            opts: list[Any] = ([None] if m.answer_optional else []) + options
            choices[m.search_id] = c1.selectbox(
                label, opts, key=f"mt_outcome_{detail.row.id}_{m.search_id}",
                index=None if not m.answer_optional else 0, placeholder="Ergebnis wählen",
                format_func=lambda o: "– nicht genannt" if o is None else Outcome(o).label,
            )
            notes[m.search_id] = c2.text_input("Notiz", key=f"mt_note_{detail.row.id}_{m.search_id}",
                                               label_visibility="visible")
            until[m.search_id] = c3.date_input("Warteliste: voraussichtlich ab", value=None, format="DD.MM.YYYY",
                                               key=f"mt_until_{detail.row.id}_{m.search_id}",
                                               help="Nur bei „auf Warteliste“: wann die Praxis voraussichtlich Platz hat.")
        submitted = st.form_submit_button("Antwort speichern", type="primary")
    if submitted:
        given = {sid: o for sid, o in choices.items() if o is not None}
        missing = detail.missing_answers(given)
        if missing:
            st.error("Bitte für jede Patient:in ein Ergebnis wählen (fehlt: " + ", ".join(md(m.patient_name) for m in missing) + ").")
            return
        try:
            # retried on a deadlock or serialization failure; the form keeps its input either way
            report = run_unit_of_work(lambda s: inquiries_answers.record_answer(
                s, actor, detail.row.id, given, today=today, now=now,
                notes={k: v for k, v in notes.items() if v}, settings=settings,
                waitlist_until={k: v for k, v in until.items() if v}))
            _done(report.summary())
        except inquiry_loading.InquiryError as exc:
            _show_inquiry_error(exc)
        except ConcurrentChange as exc:
            st.warning(md(exc), icon=":material/sync_problem:")


def _replies(inquiry_id: int) -> None:
    """The mails received about this inquiry (Posteingang), in the order they arrived."""
    with read_session() as s:
        replies = inbox_views.replies_for_inquiry(s, actor, inquiry_id)
    if not replies:
        return
    st.markdown(f"**Posteingang** – {plural(len(replies), 'Nachricht', 'Nachrichten')} zu dieser Anfrage")
    st.dataframe(
        rv.frame([{"Eingang": format_datetime(r.received_at), "Art": r.kind.label, "Status": r.state.label,
                   "Betreff": r.subject} for r in replies]),
        key=f"mt_replies_{inquiry_id}", hide_index=True, width="stretch", placeholder="–",
    )
    st.page_link("pages/inbox.py", label="Neueste Nachricht im Posteingang öffnen", icon=":material/inbox:",
                 query_params={"nachricht": str(replies[-1].id)})


def _detail_panel(inquiry_id: int) -> None:
    try:
        with read_session() as s:
            d = inquiry_views.inquiry_detail(s, actor, inquiry_id, today=today, now=now, settings=settings)
    except inquiry_loading.InquiryError as exc:
        st.info(md(exc))
        return
    r = d.row
    st.subheader(f"Anfrage {r.reference} an {md(r.therapist_name)} ({r.therapist_ref})")
    badges = [layout.badge_md(r.status), layout.badge_md(r.channel)]
    if r.response_type:
        badges.append(layout.badge_md(r.response_type))
    badges += [layout.badge_md(m) for m in (InquiryMark.reduced, InquiryMark.follow_up_due, InquiryMark.needs_attention)
               if (m == InquiryMark.reduced and r.reduced) or (m == InquiryMark.follow_up_due and r.follow_up_due)
               or (m == InquiryMark.needs_attention and r.needs_attention)]
    st.markdown(" ".join(badges))
    facts = [f"erstellt {format_datetime(r.created_at)}"]
    if r.sent_at:
        facts.append(f"gesendet {format_datetime(r.sent_at)} (vor {plural(r.days_since_sent or 0, 'Tag', 'Tagen')})"
                     if r.days_since_sent is not None else f"gesendet {format_datetime(r.sent_at)}")
    if r.answered_at:
        facts.append(f"beantwortet {format_datetime(r.answered_at)}")
    if d.email_state:
        facts.append(f"E-Mail: {d.email_state.label}" + (" (im Postausgang unter „Entwürfe“)" if d.email_state == EmailState.draft else ""))
    if d.calls:
        facts.append("Anrufe: " + ", ".join(f"{format_datetime(at)} {state.label}" for at, state, _ in d.calls))
    if show_sensitive and (d.therapist_email or d.therapist_phone):
        facts.append(md(" / ".join(x for x in (d.therapist_email, d.therapist_phone) if x)))
    st.caption(" · ".join(facts))
    if d.attention_reason:
        st.warning(md(d.attention_reason), icon=":material/priority_high:")
    st.dataframe(
        rv.frame(
            [
                {"Pos.": m.position, "Platzsuche": m.search_ref, "Patient:in": m.patient_name, "PLZ": m.plz or "",
                 **({"Alter": m.age} if show_sensitive else {}), "Wartet (Tage)": m.waiting_days,
                 "Stand": m.status_text, "Hinweis": m.withdrawn_reason or m.conflict_note or ""}
                for m in d.members
            ],
            ints=["Alter", "Wartet (Tage)"],
        ),
        key=f"mt_members_{inquiry_id}", hide_index=True, width="stretch", placeholder="–",
    )
    _replies(inquiry_id)
    if not can_edit:
        return
    c1, c2, c3 = st.columns(3)
    if d.can_send:
        ok = c1.checkbox("Ja, senden", key=f"mt_confirm_send_{inquiry_id}",
                         help="Mit E-Mail-Adresse: über den Postausgang; ohne: ein Anruf auf der Anrufliste.")
        if c1.button("Anfrage senden", key=f"mt_send_{inquiry_id}", type="primary", disabled=not ok, icon=":material/send:"):
            try:
                with unit_of_work() as s:
                    report = inquiries_lifecycle.send_inquiry(s, actor, inquiry_id, today=today, now=now, settings=settings)
                _done(report.message)
            except inquiry_loading.InquiryError as exc:
                _show_inquiry_error(exc)
    if d.can_mark_call_made:
        if c2.button("Anruf geführt", key=f"mt_called_{inquiry_id}", help="Die Anfrage gilt ab jetzt als gesendet."):
            try:
                with unit_of_work() as s:
                    inquiries_lifecycle.mark_call_made(s, actor, inquiry_id, now=now)
                _done(f"Anfrage {r.reference} ist gesendet (telefonisch).")
            except inquiry_loading.InquiryError as exc:
                _show_inquiry_error(exc)
    if d.can_cancel:
        ok = c3.checkbox("Ja, stornieren", key=f"mt_confirm_cancel_{inquiry_id}")
        if c3.button("Anfrage stornieren", key=f"mt_cancel_{inquiry_id}", disabled=not ok, icon=":material/cancel:"):
            try:
                with unit_of_work() as s:
                    inquiries_lifecycle.cancel_inquiry(s, actor, inquiry_id, now=now)
                _done(f"Anfrage {r.reference} storniert.")
            except inquiry_loading.InquiryError as exc:
                _show_inquiry_error(exc)
    if d.can_record_answer:
        _answer_form(d)
    if d.accepted_members:
        st.markdown("**Nach der Zusage**")
        for m in d.accepted_members:
            c1, c2, c3, c4 = st.columns([2, 1.2, 1.2, 1.6])
            c1.markdown(f"{m.position}. {md(m.patient_name)} ({m.search_ref}) – {m.status_text}")
            if c2.button("In Sitzungen", key=f"mt_insess_{inquiry_id}_{m.search_id}"):
                _later(inquiry_id, m.search_id, Outcome.in_sessions)
            if c3.button("Nicht erschienen", key=f"mt_noshow_{inquiry_id}_{m.search_id}"):
                _later(inquiry_id, m.search_id, Outcome.no_show)
            if m.placed_here and c4.button("Erfolg bestätigen", key=f"mt_success_{inquiry_id}_{m.search_id}", type="primary",
                                           help="Nach den ersten Sitzungen: Platzsuche erfolgreich, E-Mail an die Patient:in."):
                _success(m.search_id)


def _later(inquiry_id: int, search_id: int, outcome: Outcome) -> None:
    try:
        with unit_of_work() as s:
            inquiries_answers.record_later_outcome(s, actor, inquiry_id, search_id, outcome, today=today, now=now)
        _done(f"Gespeichert: {outcome.label}.")
    except inquiry_loading.InquiryError as exc:
        _show_inquiry_error(exc)


def _success(search_id: int) -> None:
    try:
        with unit_of_work() as s:
            report = closing.confirm_success(s, actor, search_id, today=today, now=now, settings=settings)
        _done(report.message)
    except inquiry_loading.InquiryError as exc:
        _show_inquiry_error(exc)


def view_inquiries() -> None:
    with read_session() as s:
        counts = inquiry_views.inquiry_counts(s, actor, now=now, settings=settings)
    key = st.segmented_control(
        "Filter", list(inquiry_views.INQUIRY_FILTERS), default="open", key="mt_filter", bind="query-params",
        format_func=lambda k: f"{inquiry_views.INQUIRY_FILTERS[k]} ({format_number(counts.get(k, 0))})",
    ) or "open"
    rv.reset_page_on_change(key, state_key="mt_filter_sig", page_key="mt_inq_page")
    page_no = rv.current_page("mt_inq_page")
    with read_session() as s:
        rows, total = inquiry_views.list_inquiries(s, actor, filter_key=key, now=now, offset=(page_no - 1) * rv.PAGE_SIZE,
                                         limit=rv.PAGE_SIZE, settings=settings)
    st.markdown(f"**{count_of(total, 'inquiry')}** · Filter: {inquiry_views.INQUIRY_FILTERS[key]}")
    if not rows:
        st.info("Keine Anfragen in diesem Filter. Neue Anfragen entstehen unter „Neue Anfrage“ oder in der Regionalplanung.")
        raw = st.query_params.get("mt_inquiry")
        if raw and raw.isdigit():
            _detail_panel(int(raw))
        return
    table = rv.frame(
        [
            {
                ID_COLUMN: r.id, "Anfrage": r.reference, "Therapeut:in": r.therapist_name, "Kennung": r.therapist_ref,
                "PLZ": r.therapist_plz or "",
                "Status": rv.badge_list(r.status), "Kanal": r.channel.label, "Herkunft": r.origin.label,
                "Größe": r.size, "Gesendet": r.sent_at, "Tage seit Versand": r.days_since_sent,
                "Patient:innen": r.members_text, "Hinweise": _marks(r),
            }
            for r in rows
        ],
        ints=["Tage seit Versand"],
        dates=["Gesendet"],
    )
    inquiry_id = selectable_table(
        table, key="mt_inquiries", param="mt_inquiry", width="stretch", placeholder="–",
        column_config={
            "Kennung": st.column_config.TextColumn("Kennung", width="small", help="Therapeut:in"),
            "Status": rv.state_column("Status", InquiryStatus, width="small"),
            "Hinweise": rv.state_column("Hinweise", InquiryMark),
            "Gesendet": rv.datetime_column("Gesendet"),
            "Größe": st.column_config.NumberColumn("Größe", format="%d", width="small"),
        },
    )
    rv.pager(total, key="mt_inq_page")
    if inquiry_id:
        _detail_panel(inquiry_id)
    else:
        st.caption("Wählen Sie eine Zeile, um die Anfrage zu senden, die Antwort zu erfassen oder Details zu sehen.")


# =========================================================================== placements and conflicts


def view_placements() -> None:
    with read_session() as s:
        conflicts = inquiries_answers.list_conflicts(s, actor)
        placed = inquiry_views.placed_searches(s, actor)
    st.markdown(f"**{plural(len(conflicts), 'offener Konflikt', 'offene Konflikte')}** – eine zweite Zusage für "
                "eine Patient:in, die schon vermittelt ist. Die erste Zusage gilt; bitte die andere Praxis informieren.")
    if not conflicts:
        st.info("Keine offenen Konflikte.", icon=":material/check_circle:")
    else:
        table = pd.DataFrame(
            [
                {"Anfrage": c.reference, "Patient:in": c.patient_name, "Zusage von": c.therapist_name,
                 "Vermittelt an": c.placed_therapist_name or "–", "Antwort am": format_datetime(c.answered_at)}
                for c in conflicts
            ]
        )
        event = st.dataframe(table, key="mt_conflicts", on_select="rerun", selection_mode="single-row", hide_index=True,
                             width="stretch", placeholder="–")
        picked = [i for i in (event.selection.rows if event is not None else []) if i < len(conflicts)]
        if picked and can_edit:
            c = conflicts[picked[0]]
            with st.form(f"mt_resolve_{c.member_id}"):
                note = st.text_input("Wie wurde der Konflikt gelöst?", key=f"mt_resolve_note_{c.member_id}",
                                     placeholder="z. B. Praxis am Telefon informiert, Platz wird anderweitig vergeben")
                if st.form_submit_button("Zusage freigeben", type="primary"):
                    try:
                        with unit_of_work() as s:
                            inquiries_answers.resolve_conflict(s, actor, c.member_id, note, now=now)
                        _done(f"Konflikt für {c.patient_name} ({c.reference}) gelöst.")
                    except inquiry_loading.InquiryError as exc:
                        st.error(md(exc), icon=":material/error:")
    st.divider()
    st.markdown(f"**{plural(len(placed), 'Zusage wartet', 'Zusagen warten')} auf die Bestätigung nach den ersten Sitzungen**")
    if not placed:
        st.caption("Keine offenen Zusagen.")
        return
    table = pd.DataFrame(
        [{"Platzsuche": search_ref(sid), "Patient:in": name, "Therapeut:in": tname, "Kennung": therapist_ref(tid),
          "Zusage am": format_date(on)} for sid, name, tid, tname, on in placed]
    )
    event = st.dataframe(table, key="mt_placed", on_select="rerun", selection_mode="single-row", hide_index=True, width="stretch", placeholder="–")
    picked = [i for i in (event.selection.rows if event is not None else []) if i < len(placed)]
    if picked and can_edit:
        sid, name, _, tname, _ = placed[picked[0]]
        if st.button(f"Erfolg für {md(name)} ({search_ref(sid)}) bestätigen", key=f"mt_success_placed_{sid}", type="primary",
                     help="Platzsuche erfolgreich, Patient:in in Therapie, Erfolgs-E-Mail in den Postausgang."):
            _success(sid)


# =========================================================================== planner


def view_planner() -> None:
    st.caption(
        "Schlägt für alle kontaktierbaren Therapeut:innen einer Region zugleich Anfragen vor: längste Wartezeit zuerst, "
        f"nähere Praxen bevorzugt, jede Patient:in in höchstens {settings.MAX_OPEN_INQUIRIES_PER_SEARCH} offenen Anfragen."
    )
    region = _region_from_inputs("mt_plan_region", "mt_plan_radius")
    if region is None:
        st.info("Wählen Sie eine PLZ-Region, dann „Plan berechnen“.", icon=":material/route:")
        return
    if st.button("Plan berechnen", key="mt_plan_run", icon=":material/auto_awesome:"):
        with st.status("Plan wird berechnet …", expanded=False) as status:
            with read_session() as s:
                the_plan = planner.plan(s, actor, region, today=today, settings=settings)
            status.update(label=f"Plan fertig in {format_number(the_plan.seconds, 1)} s", state="complete")
        st.session_state["mt_plan"] = {"region": region, "plan": the_plan}
    stored = st.session_state.get("mt_plan")
    if not stored or stored["region"] != region:
        return
    the_plan: planner.Plan = stored["plan"]
    st.markdown(
        f"**{count_of(the_plan.inquiries, 'inquiry')} mit {plural(the_plan.placements, 'Platz', 'Plätzen')}** "
        f"für {count_of(the_plan.searches_planned, 'patient')} · {count_of(the_plan.therapists_considered, 'therapist')} "
        f"und {count_of(the_plan.searches_considered, 'search')} geprüft"
    )
    if not the_plan.items:
        st.info("Kein Vorschlag möglich: niemand in Reichweite passt, oder alle Patient:innen sind schon oft genug angefragt.")
        return
    table = pd.DataFrame(
        [
            {
                "Auswählen": True, ID_COLUMN: it.therapist_id, "Kennung": therapist_ref(it.therapist_id),
                "Therapeut:in": it.therapist_name, "PLZ": it.plz or "",
                "Kanal": it.channel.label, "Anzahl": len(it.patients),
                "Patient:innen": ", ".join(p.patient_name for p in it.patients),
                "Längste Wartezeit (Tage)": max(p.waiting_days for p in it.patients),
                "Weiteste Entfernung": format_km(max(p.distance_km for p in it.patients)),
                "Karte": planner.map_link(it, settings.PLZ_PREFIX_DIGITS),
            }
            for it in the_plan.items
        ]
    )
    edited = st.data_editor(
        table, key="mt_plan_table", hide_index=True, width="stretch", num_rows="fixed",
        disabled=[c for c in table.columns if c != "Auswählen"],
        column_config={
            "Auswählen": st.column_config.CheckboxColumn("Auswählen", width="small"),
            ID_COLUMN: None,
            "Karte": st.column_config.LinkColumn("Karte", display_text="Karte öffnen"),
        }, placeholder="–"
    )
    chosen_ids = set(int(x) for x in edited[edited["Auswählen"]][ID_COLUMN])
    chosen = [(it.therapist_id, it.search_ids) for it in the_plan.items if it.therapist_id in chosen_ids]
    if not can_edit:
        return
    send_now = st.checkbox("Gleich senden (E-Mails über den Postausgang, sonst Anrufe auf der Anrufliste)", key="mt_plan_send")
    if st.button(f"{count_of(len(chosen), 'inquiry')} erstellen", key="mt_plan_create", type="primary",
                 disabled=not chosen, icon=":material/playlist_add_check:"):
        with st.spinner("Anfragen werden erstellt …"):
            report = planner.create_from_plan(
                scope, actor, chosen, today=today, now=now, origin=InquiryOrigin.planner, plan_region=region.key or None,
                send=send_now, settings=settings,
            )
        st.session_state.pop("mt_plan", None)
        if report.failed:
            st.session_state["mt_plan_failed"] = report.failed
        _done(report.summary())
    if failed := st.session_state.pop("mt_plan_failed", None):
        st.warning("Nicht möglich:\n" + "\n".join(f"- {therapist_ref(k)}: {md(v)}" for k, v in failed.items()))


# =========================================================================== nightly suggestions


def view_nightly() -> None:
    st.caption(
        "Jede Nacht plant der Hintergrunddienst für ganz Deutschland Anfragen vor. Sie gehen erst nach Ihrer Freigabe "
        "hinaus (vorher noch einmal geprüft) und werden in der nächsten Nacht durch neue ersetzt."
    )
    with read_session() as s:
        regions = planner.nightly_overview(s, actor)
    if not regions:
        st.info("Keine Vorschläge der Nacht offen.", icon=":material/bedtime:")
        return
    st.dataframe(
        pd.DataFrame([{"Region": r.region, "Anfragen": r.inquiries, "Patient:innen": r.patients,
                       "Vorbereitet": format_datetime(r.prepared_at)} for r in regions]),
        key="mt_nightly_regions", hide_index=True, width="stretch", placeholder="–"
    )
    region = st.selectbox("Region", [r.region for r in regions], key="mt_nightly_region",
                          format_func=lambda p: f"PLZ {p}…")
    with read_session() as s:
        items = planner.nightly_items(s, actor, region, today=today)
    st.dataframe(
        pd.DataFrame(
            [
                {"Anfrage": inquiry_loading.reference(i), "Therapeut:in": it.therapist_name, "PLZ": it.plz or "", "Kanal": it.channel.label,
                 "Patient:innen": ", ".join(p.patient_name for p in it.patients),
                 "Längste Wartezeit (Tage)": max(p.waiting_days for p in it.patients)}
                for i, it in items
            ]
        ),
        key="mt_nightly_items", hide_index=True, width="stretch", placeholder="–"
    )
    if not can_edit:
        return
    c1, c2 = st.columns(2)
    ok = c1.checkbox(f"Ja, alle {len(items)} Vorschläge für PLZ {region}… prüfen und senden", key="mt_nightly_confirm")
    if c1.button("Freigeben und senden", key="mt_nightly_approve", type="primary", disabled=not ok, icon=":material/done_all:"):
        with st.spinner("Vorschläge werden geprüft und gesendet …"):
            report = planner.approve_nightly(scope, actor, region, today=today, now=now, settings=settings)
        _done(report.summary())
    if c2.button("Vorschläge verwerfen", key="mt_nightly_discard", icon=":material/delete:"):
        with unit_of_work() as s:
            n = planner.discard_nightly(s, actor, region, today=today, now=now)
        _done(f"{count_of(n, 'suggestion')} verworfen.")


_read_only_note()
{"new": view_new, "inquiries": view_inquiries, "placements": view_placements, "planner": view_planner,
 "nightly": view_nightly}[view]()
