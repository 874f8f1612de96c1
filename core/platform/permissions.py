"""Who may do what. Checked in core services, not only by hiding pages."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Optional

from core.platform.vocab import Role


class Permission(StrEnum):
    view = "view"  # lists and details without contact and health fields
    view_sensitive = "view_sensitive"  # contact data, health fields, insurance numbers
    edit = "edit"  # patients, therapists, searches, inquiries, calls, outbox
    export = "export"
    manage_users = "manage_users"
    admin = "admin"  # settings, imports review, audit log


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.viewer: frozenset({Permission.view}),
    Role.coordinator: frozenset({Permission.view, Permission.view_sensitive, Permission.edit, Permission.export}),
    Role.admin: frozenset(Permission),
}


class PermissionDenied(Exception):
    """The acting user's role does not allow this action. The message is German."""


@dataclass(frozen=True)
class Actor:
    """The user on whose behalf a service runs (or the system itself, user_id None)."""

    user_id: Optional[int]
    username: str
    role: Role
    display_name: str = ""

    def can(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS[self.role]

    def require(self, permission: Permission) -> None:
        if not self.can(permission):
            raise PermissionDenied(
                f"Ihre Rolle ({self.role.label}) erlaubt diese Aktion nicht."
            )


SYSTEM = Actor(user_id=None, username="system", role=Role.admin, display_name="Hintergrunddienst")


# Services that other services (or the system) call after their own check; they take the
# actor only to record who acted. Not callable from a page on their own.
INTERNAL = None

# The role matrix: what each public core service that takes an actor requires. Every service
# checks it first (actor.require); tests/integration/test_role_matrix.py finds every such
# service in core, fails for one missing here, and calls each with every role.
SERVICE_PERMISSIONS: dict[str, Optional[Permission]] = {
    "core.reports.audit_view.audit_rows": Permission.admin,
    "core.imports.review.accept": Permission.edit,
    "core.imports.review.accept_all": Permission.edit,
    "core.imports.review.assign": Permission.edit,
    "core.imports.review.pending_counts": Permission.edit,
    "core.imports.review.pending_ids": Permission.edit,
    "core.imports.review.recent_runs": Permission.edit,
    "core.imports.review.reject": Permission.edit,
    "core.imports.review.reject_all": Permission.edit,
    "core.imports.review.review_queue": Permission.edit,
    "core.imports.runs.import_file": Permission.edit,
    "core.imports.sources.import_uploads": Permission.edit,
    "core.imports.sources.live_status": Permission.edit,
    "core.imports.runs.fail_run": INTERNAL,  # a failed run, inside import_file
    "core.imports.sources.process_folder": INTERNAL,  # the import job (SYSTEM)
    "core.imports.sources.refresh_live": INTERNAL,  # the live-fetch job (SYSTEM)
    "core.calls.services.fall_back_to_call": INTERNAL,  # the EmailBounced handler
    "core.calls.services.postpone_follow_ups": INTERNAL,  # the OutOfOffice handler
    "core.inbox.services.assign": Permission.edit,
    "core.inbox.services.clear_invalid_address": Permission.edit,
    "core.inbox.services.dismiss": Permission.edit,
    "core.inbox.services.record_from_reply": Permission.edit,
    "core.inbox.views.inbox_counts": Permission.view,
    "core.inbox.views.invalid_address_count": Permission.view,
    "core.inbox.views.list_messages": Permission.view,
    "core.inbox.views.message_detail": Permission.view,
    "core.inbox.views.replies_for_inquiry": Permission.view,
    "core.inbox.views.replies_waiting": Permission.view,
    "core.calls.follow_ups.schedule_follow_ups": INTERNAL,  # the follow-up job (SYSTEM)
    "core.calls.planning.insert_calls": INTERNAL,
    "core.calls.services.assign_call": Permission.edit,
    "core.calls.services.cancel_call": Permission.edit,
    "core.calls.services.cancel_pending_calls": INTERNAL,  # event handlers
    "core.calls.services.complete_inquiry_calls": INTERNAL,  # event handler
    "core.calls.services.flag_inquiry": INTERNAL,
    "core.calls.services.plan_call": INTERNAL,
    "core.calls.services.plan_inquiry_call": INTERNAL,  # event handler (the sender was checked)
    "core.calls.services.record_call_result": Permission.edit,
    "core.calls.services.reschedule_call": Permission.edit,
    "core.calls.views.answer_members": Permission.view,
    "core.calls.views.call_row": Permission.view,
    "core.calls.views.coordinators": Permission.view,
    "core.calls.views.day_calls": Permission.view,
    "core.calls.views.next_call_of": Permission.view,
    "core.calls.views.overdue_calls": Permission.view,
    "core.calls.views.reachable_now": Permission.view,
    "core.calls.views.week_view": Permission.view,
    "core.inquiries.answers.list_conflicts": Permission.view,
    "core.inquiries.answers.record_answer": Permission.edit,
    "core.inquiries.answers.record_later_outcome": Permission.edit,
    "core.inquiries.answers.resolve_conflict": Permission.edit,
    "core.inquiries.answers.withdraw_search": Permission.edit,
    "core.inquiries.closing.confirm_success": Permission.edit,
    "core.inquiries.closing.expire_inquiries": Permission.edit,
    "core.inquiries.lifecycle.cancel_inquiry": Permission.edit,
    "core.inquiries.lifecycle.close_consequences": INTERNAL,
    "core.inquiries.lifecycle.create_inquiry": Permission.edit,
    "core.inquiries.lifecycle.mark_call_made": Permission.edit,
    "core.inquiries.lifecycle.send_inquiry": Permission.edit,
    "core.inquiries.views.inquiry_counts": Permission.view,
    "core.inquiries.views.inquiry_detail": Permission.view,
    "core.inquiries.views.list_inquiries": Permission.view,
    "core.inquiries.views.placed_searches": Permission.view,
    "core.mail.documents.add_therapist_document": Permission.edit,
    "core.mail.documents.delete_therapist_document": Permission.edit,
    "core.mail.documents.list_therapist_documents": Permission.view,
    "core.mail.outbox.approve": Permission.edit,
    "core.mail.outbox.approve_many": Permission.edit,
    "core.mail.outbox.cancel": Permission.edit,
    "core.mail.outbox.cancel_pending_for_inquiry": Permission.edit,
    "core.mail.outbox.edit_draft": Permission.edit,
    "core.mail.outbox.queue_inquiry_email": Permission.edit,
    "core.mail.outbox.queue_inquiry_emails": Permission.edit,
    "core.mail.outbox.queue_patient_email": Permission.edit,
    "core.mail.outbox.queue_patient_emails": Permission.edit,
    "core.mail.outbox.queue_reminder_email": Permission.edit,
    "core.mail.outbox.queue_thanks_email": Permission.edit,
    "core.mail.outbox.resend": Permission.edit,
    "core.mail.outbox.retry": Permission.edit,
    "core.mail.views.email_detail": Permission.view_sensitive,
    "core.mail.views.list_emails": Permission.view,
    "core.mail.views.local_mailbox": Permission.view_sensitive,
    "core.mail.views.outbox_counts": Permission.view,
    "core.mail.views.patient_brief": Permission.view_sensitive,
    "core.mail.views.queue_panel": Permission.view,
    "core.mail.views.therapist_brief": Permission.view,
    "core.matching.contactable.contactable_therapists": Permission.view,
    "core.matching.eligibility.ineligibility_reasons": Permission.view,
    "core.matching.eligibility.propose_inquiry": Permission.view,
    "core.matching.map_view.find_patients": Permission.view,
    "core.matching.map_view.patient_view": Permission.view,
    "core.matching.map_view.region_view": Permission.view,
    "core.matching.proposal_view.proposal_view": Permission.view,
    "core.planning.planner.approve_nightly": Permission.edit,
    "core.planning.planner.create_from_plan": Permission.edit,
    "core.planning.planner.discard_nightly": Permission.edit,
    "core.planning.planner.nightly_items": Permission.view,
    "core.planning.planner.nightly_overview": Permission.view,
    "core.planning.planner.plan": Permission.view,
    "core.planning.planner.prepare_nightly_drafts": Permission.edit,
    "core.platform.audit.record": INTERNAL,
    "core.platform.audit.record_many": INTERNAL,  # delivery bookkeeping (SYSTEM)
    "core.platform.audit.search_entries": Permission.admin,
    "core.platform.auth.end_session": INTERNAL,  # one's own session; another's only with manage_users
    "core.platform.auth.reset_password": Permission.manage_users,
    "core.platform.auth.start_session": INTERNAL,
    "core.platform.auth.unlock_account": Permission.manage_users,
    "core.platform.users.change_own_password": INTERNAL,
    "core.platform.users.change_role": Permission.manage_users,
    "core.platform.users.create_user": Permission.manage_users,
    "core.platform.users.list_users": Permission.manage_users,
    "core.platform.users.needs_password_change": INTERNAL,
    "core.platform.users.reset_password": Permission.manage_users,
    "core.platform.users.set_active": Permission.manage_users,
    "core.privacy.anonymise.anonymise_expired": INTERNAL,
    "core.privacy.anonymise.anonymise_patient": Permission.admin,
    "core.privacy.export.export_patient": Permission.admin,
    "core.privacy.reads.patient_brief": Permission.admin,
    "core.privacy.reads.record_read": INTERNAL,
    "core.privacy.reads.who_saw": Permission.admin,
    "core.registry.csv_files.commit_import": Permission.edit,
    "core.registry.csv_files.export_csv": Permission.export,
    "core.registry.csv_files.preview_import": Permission.edit,
    "core.registry.exclusions.add_exclusion": Permission.edit,
    "core.registry.exclusions.exclusions_for_patient": Permission.view,
    "core.registry.exclusions.exclusions_for_therapist": Permission.view,
    "core.registry.exclusions.remove_exclusion": Permission.edit,
    "core.registry.patient_detail.get_patient": Permission.view,
    "core.registry.patient_detail.patient_history": Permission.view,
    "core.registry.patients.create_patient": Permission.edit,
    "core.registry.patients.export_rows": Permission.export,  # and view_sensitive
    "core.registry.patients.list_patients": Permission.view,
    "core.registry.patients.lookup": Permission.view,
    "core.registry.patients.update_patient": Permission.edit,
    "core.registry.records.create": Permission.edit,
    "core.registry.records.lookup": Permission.view,
    "core.registry.records.update": Permission.edit,
    "core.registry.records.visible_values": INTERNAL,  # callers check view; it only hides sensitive fields
    "core.registry.searches.add_note": Permission.edit,
    "core.registry.searches.cancel_search": Permission.edit,
    "core.registry.searches.change_search": Permission.edit,
    "core.registry.searches.note_line": INTERNAL,
    "core.registry.searches.pause_search": Permission.edit,
    "core.registry.searches.resume_search": Permission.edit,
    "core.registry.searches.searches_for_patient": Permission.view,
    "core.registry.searches.start_search": Permission.edit,
    "core.registry.therapist_status.block": Permission.edit,
    "core.registry.therapist_status.change_status": Permission.edit,
    "core.registry.therapist_status.deactivate": Permission.edit,
    "core.registry.therapist_status.unblock": Permission.edit,
    "core.registry.therapists.create_therapist": Permission.edit,
    "core.registry.therapists.export_rows": Permission.export,  # and view_sensitive
    "core.registry.therapists.get_therapist": Permission.view,
    "core.registry.therapists.list_therapists": Permission.view,
    "core.registry.therapists.lookup": Permission.view,
    "core.registry.therapists.therapist_history": Permission.view,
    "core.registry.therapists.update_therapist": Permission.edit,
    "core.reports.contact_log.contact_log": Permission.view_sensitive,
    "core.reports.contact_log.create_contact_log": Permission.view_sensitive,
    "core.reports.lookup.find": Permission.view,
    "core.reports.overview.cached_home_view": Permission.view,
    "core.reports.overview.home_view": Permission.view,
    "core.reports.overview.overview": Permission.view,
    "core.reports.overview.runner_health": Permission.view,
    "core.reports.todos.todos": Permission.view,
}
