"""Roles of SPEC.md: staff do everything; auditors read; anyone else nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.permissions import SAFE_METHODS, BasePermission

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.views import APIView

AUDITORS_GROUP = "auditors"


def is_auditor(user: object) -> bool:
    groups = getattr(user, "groups", None)
    return bool(groups is not None and groups.filter(name=AUDITORS_GROUP).exists())


class IsStaff(BasePermission):
    message = "Only staff may do this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_active and user.is_staff)


class IsStaffOrAuditorReadOnly(BasePermission):
    message = "Staff, or auditors for reading, only."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        if user.is_staff:
            return True
        return request.method in SAFE_METHODS and is_auditor(user)
