"""Invitations: single-use, expiring codes that let a logged-in user join an organization.

Only the SHA-256 of a code is stored; the code is returned once, when the invitation
is made, inside its link.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ..catalog import Catalog, Invitation, Membership, Organization, is_id, utcnow
from ..errors import DatapilotError, bad_request, not_found
from ..hubapi import HubClient
from ..permissions import ROLES
from ._identity import Caller, OrgContext
from .org_settings import settings_of
from .orgs import join_hub_group, org_model, publish_hub_group, resync_hub_member

DEFAULT_EXPIRES_IN = 7 * 24 * 3600
MIN_EXPIRES_IN = 60
MAX_EXPIRES_IN = 90 * 24 * 3600
# no "@", space or control character in any part of an address (escapes only, so that
# Python and the OpenAPI document's ECMA-262 readers see one rule)
_ADDRESS_PART = r"[^@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+"
#: what an invitation's e-mail address must look like
EMAIL_PATTERN = rf"^{_ADDRESS_PART}@{_ADDRESS_PART}\.{_ADDRESS_PART}$"
_EMAIL_RE = re.compile(EMAIL_PATTERN)
# token_urlsafe(32) gives 43 characters; anything else is not a code we made
CODE_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")


def hash_code(code: str) -> str:
    """The stored form of an invitation code."""
    return hashlib.sha256(code.encode()).hexdigest()


def invitation_state(inv: Invitation) -> str:
    """``pending``, ``used``, ``revoked`` or ``expired``."""
    if inv.used_at is not None:
        return "used"
    if inv.revoked_at is not None:
        return "revoked"
    if inv.expires <= utcnow():
        return "expired"
    return "pending"


def invitation_model(inv: Invitation) -> dict[str, Any]:
    """The JSON model of an invitation (never the code)."""

    def iso(t):
        return t.isoformat() if t else None

    return {
        "id": inv.id,
        "role": inv.role,
        "email": inv.email,
        "state": invitation_state(inv),
        "created_by": inv.created_by,
        "created": iso(inv.created),
        "expires": iso(inv.expires),
        "used_by": inv.used_by,
        "used_at": iso(inv.used_at),
        "revoked_at": iso(inv.revoked_at),
    }


class InvitationService:
    """Create, list, revoke and accept invitations.

    Parameters
    ----------
    catalog : Catalog
        The catalog.
    hub : HubClient
        Adds the new member to the organization's hub group.
    plans : Plans, optional
        Checks the ``members`` limit before a member joins.
    """

    def __init__(self, catalog: Catalog, hub: HubClient, plans: Any = None) -> None:
        self.catalog = catalog
        self.hub = hub
        self.plans = plans

    def create(
        self, ctx: OrgContext, role: Any = None, email: Any = None, expires_in: Any = None
    ) -> dict[str, Any]:
        """Make an invitation (``members:manage``); the model carries ``code`` this once.

        Parameters
        ----------
        ctx : OrgContext
            The caller in the organization.
        role : str, optional
            The role the invitee gets; default the organization's ``default_role``.
        email : str, optional
            Whom it is for (informational; the code is what admits).
        expires_in : int, optional
            Seconds until it expires (default 7 days, 60 s to 90 days).
        """
        ctx.require("members:manage")
        if role is None:
            with self.catalog.session(system=True) as db:
                role = settings_of(db.get(Organization, ctx.org_id))["default_role"]
        if role not in ROLES:
            raise bad_request("role", f"role must be one of {', '.join(ROLES)}.", "invalid_role")
        if email is not None and (
            not isinstance(email, str) or len(email) > 255 or not _EMAIL_RE.fullmatch(email)
        ):
            raise bad_request("email", "email must be an e-mail address.")
        if expires_in is None:
            expires_in = DEFAULT_EXPIRES_IN
        if (
            isinstance(expires_in, bool)
            or not isinstance(expires_in, int)
            or not MIN_EXPIRES_IN <= expires_in <= MAX_EXPIRES_IN
        ):
            raise bad_request(
                "expires_in",
                f"expires_in must be whole seconds between {MIN_EXPIRES_IN} and {MAX_EXPIRES_IN}.",
            )
        code = secrets.token_urlsafe(32)
        with self.catalog.session(ctx.org_id) as db:
            inv = Invitation(
                organization_id=ctx.org_id,
                code_hash=hash_code(code),
                role=role,
                email=email,
                created_by=ctx.caller.name,
                created=utcnow(),
                expires=utcnow() + timedelta(seconds=expires_in),
            )
            db.add(inv)
            db.flush()
            return {**invitation_model(inv), "code": code}

    def list(self, ctx: OrgContext) -> list[dict[str, Any]]:
        """Every invitation of the organization, newest first (``members:manage``)."""
        ctx.require("members:manage")
        with self.catalog.session(ctx.org_id) as db:
            rows = db.scalars(
                select(Invitation)
                .where(Invitation.organization_id == ctx.org_id)
                .order_by(Invitation.created.desc())
            ).all()
            return [invitation_model(i) for i in rows]

    def revoke(self, ctx: OrgContext, invitation_id: str) -> dict[str, Any]:
        """Revoke a pending invitation (``members:manage``); a used one is a 409."""
        ctx.require("members:manage")
        with self.catalog.session(ctx.org_id) as db:
            inv = is_id(invitation_id) and db.scalar(
                select(Invitation).where(
                    Invitation.organization_id == ctx.org_id, Invitation.id == invitation_id
                )
            )
            if not inv:
                raise not_found("invitation", invitation_id)
            if inv.used_at is not None:
                raise DatapilotError(
                    409,
                    "invitation_used",
                    f"The invitation was already used by {inv.used_by!r}.",
                    invitation=inv.id,
                )
            if inv.revoked_at is None:
                inv.revoked_at = utcnow()
            return invitation_model(inv)

    def lookup(self, code: str) -> dict[str, Any]:
        """What an invitation code is for (the organization and role), for its page."""
        with self.catalog.session(system=True) as db:
            inv = self._find(db, code)
            return {
                "organization": org_model(db.get(Organization, inv.organization_id)),
                **invitation_model(inv),
            }

    def _find(self, db, code: Any) -> Invitation:
        if not isinstance(code, str) or not CODE_RE.fullmatch(code):
            raise DatapilotError(
                404, "not_found", "This invitation link is not valid.", invitation="code"
            )
        inv = db.scalar(select(Invitation).where(Invitation.code_hash == hash_code(code)))
        if inv is None:
            raise DatapilotError(
                404, "not_found", "This invitation link is not valid.", invitation="code"
            )
        return inv

    async def accept(self, caller: Caller, code: Any) -> dict[str, Any]:
        """Join the invitation's organization with its role; the code is used up.

        Raises 404 for an unknown code and 409 for one that is used, revoked or
        expired, or when the caller is already a member.
        """
        if caller.kind != "user":
            raise DatapilotError(
                403, "forbidden", "Only a user can accept an invitation, not a service."
            )
        with self.catalog.session(system=True) as db:
            inv = self._find(db, code)
            state = invitation_state(inv)
            if state != "pending":
                raise DatapilotError(
                    409,
                    f"invitation_{state}",
                    {
                        "used": "This invitation was already used; ask for a new one.",
                        "revoked": "This invitation was revoked; ask for a new one.",
                        "expired": "This invitation has expired; ask for a new one.",
                    }[state],
                    state=state,
                )
            org = db.get(Organization, inv.organization_id)
            org_id, slug, role = org.id, org.slug, inv.role
            if Membership.find(db, org_id, caller.name) is not None:
                raise DatapilotError(
                    409,
                    "already_member",
                    f"You are already a member of {slug!r}.",
                    org=slug,
                )
        if self.plans is not None:
            self.plans.check_members(org_id)
        # the hub first, as for any new member: a name it refuses uses up nothing
        await join_hub_group(self.hub, slug, caller.name)
        try:
            with self.catalog.session(org_id) as db:
                # single use, even when two people accept at the same moment
                claimed = db.execute(
                    update(Invitation)
                    .where(
                        Invitation.id == inv.id,
                        Invitation.used_at.is_(None),
                        Invitation.revoked_at.is_(None),
                    )
                    .values(used_by=caller.name, used_at=utcnow())
                ).rowcount
                if not claimed:
                    raise DatapilotError(
                        409,
                        "invitation_used",
                        "This invitation was already used; ask for a new one.",
                        state="used",
                    )
                db.add(Membership(organization_id=org_id, user_name=caller.name, role=role))
                db.flush()
        except Exception as e:
            await resync_hub_member(self.catalog, self.hub, slug, caller.name)
            if isinstance(e, IntegrityError):
                # joined some other way at the same moment
                raise DatapilotError(
                    409, "already_member", f"You are already a member of {slug!r}.", org=slug
                ) from None
            raise
        await publish_hub_group(self.catalog, self.hub, slug)
        return {"organization": slug, "role": role, "invitation": inv.id}
