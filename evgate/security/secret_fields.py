"""Every secret field evgate stores, in one registry, and what is done to all of them.

Where secrets live (each provider yields the leaves of one kind of document):

- API definitions (`api_definition`): Kafka `security` objects of endpoints and groups
  (saslJaasConfig, store `password` / `keyPassword`, key store `key` / `keyContent` and inline
  key store `content`), see evgate/kafka/security/;
- plans (`plan`): a jwt plan's HMAC secret (`security.configuration.resolverParameter` unless
  the signature is RSA, whose parameter is a public key);
- subscription configurations (`subscription_configuration`): webhook `auth` (basic password,
  bearer token value, oauth2 clientSecret) and the signing `secret`.

The same leaves are:

- masked in every response (`mask`): `****`, a JAAS string keeps its username and shows
  `password="****"`;
- restored on update (`restore`): a `****` sent back keeps the value stored at the same
  place, a 400 where nothing is stored there;
- sealed at rest by the repository (`seal` / `unseal` / `rotate`, evgate/security/sealing.py).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable, Iterator

MASK = "****"


@dataclass
class Leaf:
    container: dict[str, Any]
    field: str
    path: str
    jaas: bool = False
    #: Where the secret is sent (key paths from the document's root): "****" keeps the stored
    #: secret only while these are unchanged, else anyone allowed to edit could redirect a
    #: secret they cannot read to a server of theirs.
    bound: tuple[tuple[Any, ...], ...] = ()


Provider = Callable[[Any], Iterator[Leaf]]


# -- providers --------------------------------------------------------------------------------
def api_definition(definition: Any) -> Iterator[Leaf]:
    from ..kafka.security import _secret_leaves, _security_objects
    for path, security in _security_objects(definition):
        bound = _group_bootstrap_servers(definition, int(path.split("[", 2)[1].split("]")[0]))
        for container, field, rel in _secret_leaves(security):
            yield Leaf(container, field, path + rel, jaas=field == "saslJaasConfig",
                       bound=bound)


def _group_bootstrap_servers(definition: dict[str, Any], group: int
                             ) -> tuple[tuple[Any, ...], ...]:
    """Every place that names the brokers of an endpoint group (the SASL password goes to
    them): its shared configuration and each endpoint's configuration and override."""
    keys: list[tuple[Any, ...]] = [("endpointGroups", group, "sharedConfiguration",
                                    "bootstrapServers")]
    endpoints = definition["endpointGroups"][group].get("endpoints") or []
    for index in range(len(endpoints) if isinstance(endpoints, list) else 0):
        for field in ("configuration", "sharedConfigurationOverride"):
            keys.append(("endpointGroups", group, "endpoints", index, field, "bootstrapServers"))
    return tuple(keys)


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


def subscription_configuration(configuration: Any) -> Iterator[Leaf]:
    if not isinstance(configuration, dict):
        return
    if isinstance(configuration.get("secret"), str) and configuration["secret"]:
        yield Leaf(configuration, "secret", "$.configuration.secret")  # never sent
    auth = configuration.get("auth")
    if not isinstance(auth, dict):
        return
    for kind, field, bound in (("basic", "password", ("callbackUrl",)),
                               ("token", "value", ("callbackUrl",)),
                               ("oauth2", "clientSecret", ("auth", "oauth2", "endpoint"))):
        holder = auth.get(kind)
        if isinstance(holder, dict) and isinstance(holder.get(field), str) and holder[field]:
            yield Leaf(holder, field, f"$.configuration.auth.{kind}.{field}", bound=(bound,))


# -- masking and the **** round trip ----------------------------------------------------------
def mask(document: Any, provider: Provider) -> Any:
    """A deep copy with every secret replaced by ****."""
    from ..kafka.security import mask_jaas
    masked = copy.deepcopy(document)
    for leaf in list(provider(masked)):
        value = leaf.container[leaf.field]
        leaf.container[leaf.field] = mask_jaas(value) if leaf.jaas else MASK
    return masked


def _masked_jaas_password(value: str) -> bool:
    from ..kafka.security import JaasError, parse_jaas
    try:
        return parse_jaas(value).options.get("password") == MASK
    except JaasError:
        return False


def restore(document: Any, stored: Any, provider: Provider
            ) -> tuple[Any, list[dict[str, str]]]:
    """(a copy of `document` where each **** takes the value stored at the same path,
    the {"path", "message"} problems where nothing is stored to keep)."""
    from ..kafka.security import JaasError, parse_jaas
    restored = copy.deepcopy(document)
    previous = {leaf.path: leaf.container[leaf.field] for leaf in provider(stored)}
    problems: list[dict[str, str]] = []
    for leaf in list(provider(restored)):
        value = leaf.container[leaf.field]
        masked_jaas = leaf.jaas and value != MASK and _masked_jaas_password(value)
        if value != MASK and not masked_jaas:
            continue
        kept = previous.get(leaf.path)
        moved = [_key_text(key) for key in leaf.bound
                 if _value_at(document, key) != _value_at(stored, key)]
        if not isinstance(kept, str) or kept == MASK:
            problems.append(_masked_problem(leaf.path))
        elif moved:
            problems.append({"path": leaf.path, "message": (
                f"{MASK} keeps the stored secret only while {moved[0]} is unchanged: "
                f"send the secret again with the new {moved[0]}")})
        elif not masked_jaas:
            leaf.container[leaf.field] = kept
        else:  # the JAAS string may change (username, module) but keep the stored password
            try:
                password = parse_jaas(kept).options.get("password")
            except JaasError:
                password = None
            if password is None or password == MASK:
                problems.append(_masked_problem(leaf.path))
                continue
            jaas = parse_jaas(value)
            jaas.options["password"] = password
            leaf.container[leaf.field] = jaas.format()
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
