"""Encryption at rest of secret values (Fernet, MultiFernet for key rotation).

Each secret value (evgate/security/secret_fields.py says which) is stored as
`fernet:<token>` in place of the clear string, so the JSON documents keep their shape and
everything else in them stays readable and queryable. The repository seals on write and unseals
on read; services and gateway workers see clear values, responses mask them.

Keys (`EVGATE_SECRETS_KEY`): a comma-separated list of Fernet keys; the first encrypts, all
decrypt. Rotation: put the new key first, run `evgate secrets rotate` (re-encrypts every stored
secret with it), then drop the old key. Without the setting, a local SQLite file gets a key
file `<database>.secrets-key` (mode 0600) beside it, created once with a WARNING: secrets are
then as safe as that file. Any other database (PostgreSQL, shared by many nodes that must all
decrypt) refuses to start: a key generated on one node would be unknown to the others.
"""
from __future__ import annotations

import base64
import logging
import os
import tempfile
from typing import Iterable

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy.engine import make_url

from ..errors import BackendUnavailableError, ConfigError

logger = logging.getLogger(__name__)

PREFIX = "fernet:"
KEY_FILE_SUFFIX = ".secrets-key"
ENV = "EVGATE_SECRETS_KEY"


class SecretsKeyError(BackendUnavailableError):
    """A stored secret that the configured keys cannot decrypt (wrong key, or the key that
    encrypted it was dropped before `evgate secrets rotate`). A 503 naming the setting,
    never the value: the operator fixes the key, clients retry."""

    def __init__(self, where: str):
        self.where = where
        super().__init__(f"a stored secret ({where}) cannot be decrypted with the configured "
                         f"{ENV}: wrong key, or the key that encrypted it was removed",
                         key="SECRETS_KEY", retry_after=30)


class Keyring:
    """The configured Fernet keys: seal with the first, open with any."""

    def __init__(self, keys: Iterable[str | bytes], source: str = ENV):
        parsed = []
        first = b""
        for index, key in enumerate(keys):
            try:
                parsed.append(Fernet(key))
                first = first or base64.urlsafe_b64decode(key)
            except (ValueError, TypeError):
                raise ConfigError(f"{source}: key #{index + 1} is not a Fernet key (32 "
                                  "url-safe base64-encoded bytes; generate one with "
                                  "`evgate secrets generate-key`)") from None
        if not parsed:
            raise ConfigError(f"{source}: no key given")
        self.source = source
        self._fernet = MultiFernet(parsed)
        self._first = first

    def derive(self, purpose: str) -> bytes:
        """A 32-byte key for `purpose` (e.g. the console's session signing key), derived
        from the first key with HMAC-SHA256: every node sharing the keys derives the same one,
        a local SQLite install gets it from its key file, and it changes when the first key
        is rotated (signed sessions then end). The derived key reveals nothing of the first."""
        import hashlib
        import hmac
        return hmac.new(self._first, b"evgate/" + purpose.encode("utf-8"), hashlib.sha256).digest()

    def __repr__(self) -> str:  # never the keys
        return f"<Keyring from {self.source}>"

    def seal(self, value: str) -> str:
        """`fernet:<token>`, always (a clear value that happens to start with `fernet:`
        is encrypted too, so it reads back as it was given)."""
        return PREFIX + self._fernet.encrypt(value.encode("utf-8")).decode("ascii")

    def open(self, value: str, where: str = "value") -> str:
        """The clear value; a clear (not yet migrated) value is returned as it is."""
        if not is_sealed(value):
            return value
        try:
            return self._fernet.decrypt(value[len(PREFIX):].encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError, ValueError):
            raise SecretsKeyError(where) from None

    def rotate(self, value: str, where: str = "value") -> str:
        """The value sealed with the first key (a clear, not yet migrated, value gets
        sealed)."""
        if not is_sealed(value):
            return self.seal(value)
        try:
            return PREFIX + self._fernet.rotate(value[len(PREFIX):].encode("ascii")).decode(
                "ascii")
        except (InvalidToken, ValueError):
            raise SecretsKeyError(where) from None


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def generate_key() -> str:
    return Fernet.generate_key().decode("ascii")


def parse_keys(raw: str) -> tuple[str, ...]:
    """The setting's parser: comma-separated keys, each checked (ValueError names its rank)."""
    keys = tuple(part.strip() for part in raw.split(",") if part.strip())
    for index, key in enumerate(keys):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise ValueError(f"key #{index + 1} is not a Fernet key (32 url-safe "
                             "base64-encoded bytes; `evgate secrets generate-key`)") from None
    if not keys:
        raise ValueError("no key given")
    return keys


def key_file_for(database_url: str) -> str | None:
    """Where the default key of a local SQLite file lives; None for other databases."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return os.path.abspath(url.database) + KEY_FILE_SUFFIX


_MEMORY_KEY: str | None = None  # an in-memory SQLite database lives as long as its process


def keyring_for(database_url: str, keys: Iterable[str] | str | None = None) -> Keyring:
    """The keyring of a repository: the configured keys (the setting, else the environment),
    else the SQLite key file (created on first use), else a ConfigError."""
    global _MEMORY_KEY
    if keys is None:
        keys = os.environ.get(ENV) or None
    if isinstance(keys, str):
        try:
            keys = parse_keys(keys)
        except ValueError as exc:
            raise ConfigError(f"{ENV}: {exc}") from None
    if keys:
        return Keyring(keys)
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and (not url.database or url.database == ":memory:"):
        _MEMORY_KEY = _MEMORY_KEY or generate_key()
        return Keyring([_MEMORY_KEY], source="an in-memory key")
    path = key_file_for(database_url)
    if path is None:
        raise ConfigError(
            f"{ENV} is not set: it is required with a {url.get_backend_name()} repository "
            "(every node must decrypt the same secrets). Generate a key with `evgate secrets "
            f"generate-key` and give the same {ENV} to every gateway and management process")
    return Keyring([_key_file(path)], source=path)


def _key_file(path: str) -> str:
    """Read the key file, creating it (mode 0600, atomically) when it does not exist yet."""
    try:
        with open(path, encoding="ascii") as handle:
            return handle.read().strip()
    except FileNotFoundError:
        pass
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=".secrets-key-", dir=directory)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(generate_key() + "\n")
        try:
            os.link(temporary, path)  # atomic; another process may have won the race
            logger.warning("%s is not set: generated the secrets key file %s (mode 0600). "
                           "Back it up with the database; stored secrets cannot be read "
                           "without it", ENV, path)
        except FileExistsError:
            pass
    finally:
        os.unlink(temporary)
    with open(path, encoding="ascii") as handle:
        return handle.read().strip()
