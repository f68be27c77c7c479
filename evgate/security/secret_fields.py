"""Every secret field evgate stores, in one registry, and what is done to all of them.

Where secrets live (each provider yields the leaves of one kind of document):

- API definitions (`api_definition`): Kafka `security` objects of endpoints and groups
  (saslJaasConfig, store `password` / `keyPassword`, key store `key` / `keyContent` and inline
  key store `content`), see evgate/kafka/security.py;
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


Provider = Callable[[Any], Iterator[Leaf]]


# -- providers --------------------------------------------------------------------------------
def api_definition(definition: Any) -> Iterator[Leaf]:
    from ..kafka.security import _secret_leaves, _security_objects
    for path, security in _security_objects(definition):
        for container, field, rel in _secret_leaves(security):
            yield Leaf(container, field, path + rel, jaas=field == "saslJaasConfig")


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
        yield Leaf(configuration, "secret", "$.configuration.secret")
    auth = configuration.get("auth")
    if not isinstance(auth, dict):
        return
    for kind, field in (("basic", "password"), ("token", "value"), ("oauth2", "clientSecret")):
        holder = auth.get(kind)
        if isinstance(holder, dict) and isinstance(holder.get(field), str) and holder[field]:
            yield Leaf(holder, field, f"$.configuration.auth.{kind}.{field}")


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
        if not isinstance(kept, str) or kept == MASK:
            problems.append(_masked_problem(leaf.path))
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
