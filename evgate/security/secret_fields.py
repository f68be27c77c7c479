"""Every secret evgate stores, found from the models that declare it, and what is done to them.

Secret fields are marked on the plugin configuration models (`Secret` in
evgate/definition/plugin_config.py); each provider here yields the secret leaves of one kind of
document:

- API definitions (`api_definition`): the secret fields of each endpoint's configuration model
  (for Kafka: saslJaasConfig, store passwords, key store keys and inline key store content),
  in every endpoint group's shared configuration and each endpoint's configuration and
  override;
- plans (`plan`): a jwt plan's HMAC secret (`security.configuration.resolverParameter` unless
  the signature is RSA, whose parameter is a public key);
- subscription configurations (`subscription_configuration`): the secret fields of the webhook
  entrypoint's subscription model (auth basic password, bearer token value, oauth2
  clientSecret, the signing `secret`), and the value of each webhook header whose name says
  it carries a credential (`is_credential_header`: Authorization, Cookie, X-Api-Key, ...).

The same leaves are:

- masked in every response (`mask`): `****`, or the field's own masking (a JAAS string keeps
  its username and shows `password="****"`);
- restored on update (`restore`): a `****` sent back keeps the value stored at the same
  place, a 400 where nothing is stored there or where the secret's destination changed;
- sealed at rest by the repository (`seal` / `unseal` / `rotate`, evgate/security/sealing.py).
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Iterator

from .. import plugins
from ..definition.plugin_config import Secret, SecretField, secret_fields

MASK = "****"
_PLAIN = Secret()


@dataclass
class Leaf:
    container: dict[str, Any]
    field: str
    path: str
    secret: Secret = _PLAIN
    #: Where the secret is sent (key paths from the document's root): "****" keeps the stored
    #: secret only while these are unchanged, else anyone allowed to edit could redirect a
    #: secret they cannot read to a server of theirs.
    bound: tuple[tuple[Any, ...], ...] = ()
    #: What a `****` is matched with in the stored document: the path, unless the place of the
    #: secret moves with an edit (a header's index changes when another header is inserted).
    match: str = ""

    @property
    def key(self) -> str:
        return self.match or self.path


Provider = Callable[[Any], Iterator[Leaf]]


# -- providers --------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _plugin_secrets(kind: str, type_: Any, attribute: str = "configuration_model"
                    ) -> tuple[SecretField, ...]:
    """The secret fields a registered plugin type declares (none for an unknown type: such a
    definition is refused by the validator before anything is stored)."""
    if not isinstance(type_, str) or not plugins.is_known(kind, type_):
        return ()
    return secret_fields(getattr(plugins.load(kind, type_), attribute, None))


def _leaves(configuration: Any, fields: tuple[SecretField, ...], where: str
            ) -> Iterator[Leaf]:
    """The non-empty string values of `fields` in one configuration object."""
    for spec in fields:
        holder = configuration
        for name in spec.path[:-1]:
            holder = holder.get(name) if isinstance(holder, dict) else None
        name = spec.path[-1]
        if isinstance(holder, dict) and isinstance(holder.get(name), str) and holder[name]:
            yield Leaf(holder, name, where + "".join(f".{part}" for part in spec.path),
                       secret=spec.secret)


def api_definition(definition: Any) -> Iterator[Leaf]:
    if not isinstance(definition, dict) or not isinstance(definition.get("endpointGroups"),
                                                            list):
        return
    for gi, group in enumerate(definition["endpointGroups"]):
        if not isinstance(group, dict):
            continue
        # (key path from the root, endpoint type) of every configuration of the group
        places: list[tuple[tuple[Any, ...], Any]] = [
            (("endpointGroups", gi, "sharedConfiguration"), group.get("type"))]
        endpoints = group.get("endpoints")
        for ni, endpoint in enumerate(endpoints if isinstance(endpoints, list) else []):
            if not isinstance(endpoint, dict):
                continue
            type_ = endpoint.get("type")
            if not (isinstance(type_, str) and plugins.is_known("endpoints", type_)):
                type_ = group.get("type")
            for field in ("configuration", "sharedConfigurationOverride"):
                places.append((("endpointGroups", gi, "endpoints", ni, field), type_))
        for key, type_ in places:
            for leaf in _leaves(_value_at(definition, key), _plugin_secrets("endpoints", type_),
                                "$." + _key_text(key)):
                # the group's endpoints share their settings: a destination changed in any
                # of its configurations counts
                leaf.bound = tuple(place + sent for place, _ in places
                                   for sent in leaf.secret.sent_to)
                yield leaf


def plan(document: Any) -> Iterator[Leaf]:
    if not isinstance(document, dict):
        return
    security = document.get("security")
    if not isinstance(security, dict) or str(security.get("type", "")).lower() != "jwt":
        return
    conf = security.get("configuration")
    if not isinstance(conf, dict) or not isinstance(conf.get("resolverParameter"), str):
        return
    if str(conf.get("signature") or "HMAC_HS256").upper().startswith("RSA"):
        return  # a public key
    yield Leaf(conf, "resolverParameter", "$.security.configuration.resolverParameter")


#: Header names that carry credentials: their values are secrets like `auth`'s.
_CREDENTIAL_HEADER = re.compile(
    r"auth|cookie|token|secret|passw|credential|session|signature|api[-_]?key|access[-_]?key|"
    r"private[-_]?key|client[-_]?key", re.IGNORECASE)


def is_credential_header(name: Any) -> bool:
    """Whether a webhook header's value is treated as a secret (masked, sealed), by its name:
    Authorization, Proxy-Authorization, Cookie, X-Api-Key, X-Auth-Token, ..."""
    return isinstance(name, str) and _CREDENTIAL_HEADER.search(name) is not None


def subscription_configuration(configuration: Any) -> Iterator[Leaf]:
    if not isinstance(configuration, dict):
        return
    fields = _plugin_secrets("entrypoints", "webhook", "subscription_configuration_model")
    for leaf in _leaves(configuration, fields, "$.configuration"):
        leaf.bound = leaf.secret.sent_to
        yield leaf
    headers = configuration.get("headers")
    seen: dict[str, int] = {}
    for index, header in enumerate(headers if isinstance(headers, list) else []):
        if not (isinstance(header, dict) and is_credential_header(header.get("name"))
                and isinstance(header.get("value"), str) and header["value"]):
            continue
        name = header["name"].lower()
        seen[name] = seen.get(name, -1) + 1
        # matched by name (and occurrence), not index: inserting another header keeps it;
        # like auth's credentials it goes only to the callback it was given for
        yield Leaf(header, "value", f"$.configuration.headers[{index}].value",
                   bound=(("callbackUrl",),), match=f"headers:{name}#{seen[name]}")


# -- masking and the **** round trip ----------------------------------------------------------
def mask(document: Any, provider: Provider) -> Any:
    """A deep copy with every secret replaced by ****."""
    masked = copy.deepcopy(document)
    for leaf in list(provider(masked)):
        value = leaf.container[leaf.field]
        leaf.container[leaf.field] = leaf.secret.mask(value) if leaf.secret.mask else MASK
    return masked


def restore(document: Any, stored: Any, provider: Provider
            ) -> tuple[Any, list[dict[str, str]]]:
    """(a copy of `document` where each **** takes the value stored at the same path,
    the {"path", "message"} problems where nothing is stored to keep)."""
    restored = copy.deepcopy(document)
    previous = {leaf.key: leaf.container[leaf.field] for leaf in provider(stored)}
    problems: list[dict[str, str]] = []
    for leaf in list(provider(restored)):
        value = leaf.container[leaf.field]
        is_masked = leaf.secret.is_masked
        partly_masked = is_masked is not None and value != MASK and is_masked(value)
        if value != MASK and not partly_masked:
            continue
        kept = previous.get(leaf.key)
        moved = [_key_text(key) for key in leaf.bound
                 if _value_at(document, key) != _value_at(stored, key)]
        if not isinstance(kept, str) or kept == MASK:
            problems.append(_masked_problem(leaf.path))
        elif moved:
            problems.append({"path": leaf.path, "message": (
                f"{MASK} keeps the stored secret only while {moved[0]} is unchanged: "
                f"send the secret again with the new {moved[0]}")})
        elif not partly_masked:
            leaf.container[leaf.field] = kept
        else:  # e.g. a JAAS string may change (username, module) but keep the stored password
            merged = leaf.secret.unmask(value, kept) if leaf.secret.unmask else None
            if merged is None:
                problems.append(_masked_problem(leaf.path))
                continue
            leaf.container[leaf.field] = merged
    return restored, problems


def _value_at(document: Any, key: tuple[Any, ...]) -> Any:
    for name in key:
        if isinstance(name, int):
            document = document[name] if isinstance(document, list) and name < len(document) \
                else None
        elif isinstance(document, dict):
            document = document.get(name)
        else:
            return None
    return document


def _key_text(key: tuple[Any, ...]) -> str:
    return "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in key).lstrip(".")


def _masked_problem(path: str) -> dict[str, str]:
    return {"path": path, "message": f"{MASK} keeps the stored secret, but none is stored at "
                                     "this place: send the real value"}


# -- at rest ----------------------------------------------------------------------------------
def seal(document: Any, provider: Provider, keyring: Any) -> Any:
    """A copy with every secret encrypted (what the repository writes)."""
    return _each(document, provider, keyring.seal)


def unseal(document: Any, provider: Provider, keyring: Any, where: str) -> Any:
    """A copy with every secret decrypted (what the repository reads); SecretsKeyError
    (503) naming `where` when a key is wrong."""
    return _each(document, provider, lambda value: keyring.open(value, where))


def rotate(document: Any, provider: Provider, keyring: Any, where: str) -> Any:
    """A copy with every secret sealed with the first key (clear ones get sealed)."""
    return _each(document, provider, lambda value: keyring.rotate(value, where))


def _each(document: Any, provider: Provider, change: Callable[[str], str]) -> Any:
    if document is None:
        return None
    changed = copy.deepcopy(document)
    for leaf in list(provider(changed)):
        leaf.container[leaf.field] = change(leaf.container[leaf.field])
    return changed
