"""Management users: authentication, roles, and the `admin` bootstrap.

Roles (docs/management-api.md):
- ADMIN: everything.
- USER: read-only on the management API (GET) plus the consumer-side portal API
  (create applications, subscribe, update and stop/start their subscriptions), seeing only
  its own applications, subscriptions and keys (evgate/services/principal.py).
"""
from __future__ import annotations

import logging
import sys
from typing import Any

from ..errors import BadRequestError, NotFoundError
from ..repository import Repository
from ..security.login import LoginGuard
from ..security.passwords import (VerifiedCache, dummy_hash, generate_password, hash_password,
                                  verify_password)
from .principal import LOCAL_OPERATOR

logger = logging.getLogger(__name__)

ROLES = ("ADMIN", "USER")
ADMIN_USER = "admin"


class UserService:
    def __init__(self, repo: Repository, cache: VerifiedCache | None = None,
                 guard: LoginGuard | None = None):
        self.repo = repo
        self.cache = cache or VerifiedCache()
        self.guard = guard or LoginGuard.from_config()

    def authenticate(self, username: str, password: str,
                     client: str | None = None) -> dict[str, Any] | None:
        """The user (without its hash) when the password matches, else None.

        LoginThrottled past the failed-login limit of `client` (its address); then credentials
        verified within the cache TTL pass at once; then LoginThrottled past the limit of
        `username` (throttled requests never run the KDF); LoginBusy when too many
        verifications already wait. An unknown user name is verified against `dummy_hash()`,
        so it costs what a known one costs and fails the same way."""
        self.guard.check_address(client)
        user = self.repo.users.get(username)
        stored = user["password_hash"] if user is not None else ""
        if self.cache.hit(username, password, stored) and user is not None:
            return _public(user)
        self.guard.check_user(client, username)
        ok = self.guard.pool.run(verify_password, password, stored or dummy_hash())
        if not ok or user is None:
            self.guard.failed(client, username)
            return None
        self.cache.remember(username, password, stored)
        return _public(user)

    def list(self) -> list[dict[str, Any]]:
        return [_public(u) for u in self.repo.users.list()]

    def get(self, username: str) -> dict[str, Any]:
        user = self.repo.users.get(username)
        if user is None:
            raise NotFoundError("User", username)
        return _public(user)

    def set_password(self, username: str, password: str,
                     roles: list[str] | str | None = None) -> dict[str, Any]:
        """Create the user or change its password (and roles, when given)."""
        if not username or not isinstance(username, str):
            raise BadRequestError("a username is required", key="user.username.missing")
        if not password or not isinstance(password, str):
            raise BadRequestError("a password is required", key="user.password.missing")
        if username == LOCAL_OPERATOR.username:
            # the CLI's applications are owned by this name: a user by it would own them all
            raise BadRequestError(f"the user name {username!r} is reserved for the CLI",
                                  key="user.username.reserved")
        existing = self.repo.users.get(username)
        if roles is None:
            role_list = (existing["roles"].split(",") if existing
                         else ["ADMIN" if username == ADMIN_USER else "USER"])
        else:
            role_list = [roles] if isinstance(roles, str) else list(roles)
        role_list = [str(r).strip().upper() for r in role_list if str(r).strip()]
        bad = [r for r in role_list if r not in ROLES]
        if bad or not role_list:
            raise BadRequestError(f"roles must be among {', '.join(ROLES)}",
                                  key="user.roles.invalid")
        hashed = self.guard.pool.run(hash_password, password)  # off the hub
        self.repo.users.upsert(username, hashed, ",".join(role_list))
        logger.info("password set for user %s (roles %s)", username, ",".join(role_list))
        return self.get(username)

    def ensure_admin(self, password: str | None) -> str | None:
        """Make sure `admin` can log in. With a configured password, (re)set it when it
        differs from the stored one; without one and without an admin yet, generate a password
        and return it (the caller shows it once). Returns the generated password or None."""
        existing = self.repo.users.get(ADMIN_USER)
        if password:
            if existing is None or not self.cache.check(ADMIN_USER, password,
                                                        existing["password_hash"]):
                self.repo.users.upsert(ADMIN_USER, hash_password(password), "ADMIN")
                logger.info("admin password set from EVGATE_ADMIN_PASSWORD")
            return None
        if existing is not None:
            return None
        generated = generate_password()
        if self.repo.users.insert_if_absent(ADMIN_USER, hash_password(generated), "ADMIN"):
            return generated
        return None


def announce_generated_password(password: str) -> None:
    """Shown once, on stderr and never through logging (log files outlive the moment)."""
    sys.stderr.write(
        "\n*** evgate: generated password for management user 'admin': "
        f"{password}\n*** (shown once; set EVGATE_ADMIN_PASSWORD or run "
        "`evgate users set-password admin` to choose one)\n\n")
    sys.stderr.flush()


def _public(user: dict[str, Any]) -> dict[str, Any]:
    return {"username": user["username"], "roles": user["roles"].split(","),
            "createdAt": user["created_at"].isoformat(),
            "updatedAt": user["updated_at"].isoformat()}
