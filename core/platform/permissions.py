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
