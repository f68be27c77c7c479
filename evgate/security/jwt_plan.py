"""jwt plans: a `Authorization: Bearer <token>` verified with PyJWT.

Plan configuration (Gravitee's jwt policy names, plus evgate's issuer/audience checks):

- `signature`: `HMAC_HS256` (default) or `RSA_RS256` (also HS384/HS512, RS384/RS512);
- `publicKeyResolver`: `GIVEN_KEY` (the only resolver evgate implements);
- `resolverParameter`: the HMAC secret, or the PEM public key for RSA;
- `issuer`, `audience` (string or list, optional): the `iss` / `aud` the token must carry;
- `requireExpiration` (default true): tokens without `exp` are refused; `exp` and `nbf` are
  always checked when present, with `leewaySeconds` (default 0) of clock skew;
- `clientIdClaim` (default: `azp`, then `client_id`).

What evgate requires: a valid signature, issuer, audience and expiry. When the token's client id
matches the `settings.app.client_id` of an application subscribed to this plan, that
subscription must be ACCEPTED (a paused or pending one is refused) and is attached to the
request (`#subscription` in expressions); a token whose client id has no subscription is
admitted without one.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import jwt

from ..errors import UnauthorizedError
from . import snapshot_index
from .handler import PlanHandler

if TYPE_CHECKING:
    from ..core.context import ExecutionContext

logger = logging.getLogger(__name__)

ALGORITHMS = {
    "HMAC_HS256": "HS256", "HMAC_HS384": "HS384", "HMAC_HS512": "HS512",
    "RSA_RS256": "RS256", "RSA_RS384": "RS384", "RSA_RS512": "RS512",
    "HS256": "HS256", "RS256": "RS256",
}


def _algorithm(configuration: Mapping[str, Any]) -> str | None:
    return ALGORITHMS.get(str(configuration.get("signature") or "HMAC_HS256").upper())


def _prepared_key(algorithm: str, raw: str) -> Any:
    if algorithm.startswith("RS"):
        from cryptography.hazmat.primitives.serialization import load_pem_public_key
        return load_pem_public_key(raw.encode("utf-8"))
    return raw.encode("utf-8")


class JwtPlan(PlanHandler):
    type = "jwt"

    @classmethod
    def validate_configuration(cls, configuration: Mapping[str, Any]
                               ) -> Iterable[tuple[str, str]]:
        algorithm = _algorithm(configuration)
        if algorithm is None:
            yield ".signature", f"must be one of {', '.join(sorted(ALGORITHMS))}"
        resolver = str(configuration.get("publicKeyResolver") or "GIVEN_KEY").upper()
        if resolver != "GIVEN_KEY":
            yield ".publicKeyResolver", "only GIVEN_KEY is supported by evgate"
        key = configuration.get("resolverParameter")
        if not isinstance(key, str) or not key.strip():
            yield ".resolverParameter", "the signing key (HMAC secret or PEM public key) is required"
        elif algorithm and algorithm.startswith("RS"):
            try:
                _prepared_key(algorithm, key)
            except (ValueError, TypeError):
                yield ".resolverParameter", "must be a PEM-encoded RSA public key"
        elif algorithm and len(key.encode("utf-8")) < 32:
            yield ".resolverParameter", "an HMAC secret must be at least 32 bytes"
        for name in ("issuer", "audience"):
            value = configuration.get(name)
            if value is not None and not (isinstance(value, str) or (
                    isinstance(value, list) and all(isinstance(v, str) for v in value))):
                yield f".{name}", "must be a string or a list of strings"
        for name in ("requireExpiration",):
            if name in configuration and not isinstance(configuration[name], bool):
                yield f".{name}", "must be true or false"
        leeway = configuration.get("leewaySeconds", 0)
        if not isinstance(leeway, (int, float)) or leeway < 0:
            yield ".leewaySeconds", "must be a number >= 0"

    def __init__(self, plan: dict[str, Any], api: Any):
        super().__init__(plan, api)
        conf = self.configuration
        self.algorithm = _algorithm(conf) or "HS256"
        self.key = _prepared_key(self.algorithm, conf["resolverParameter"])
        self.issuer = conf.get("issuer")
        self.audience = conf.get("audience")
        self.require = ["exp"] if conf.get("requireExpiration", True) else []
        self.leeway = float(conf.get("leewaySeconds", 0))
        self.client_id_claims = ([conf["clientIdClaim"]] if conf.get("clientIdClaim")
                                 else ["azp", "client_id"])

    @staticmethod
    def _token(ctx: "ExecutionContext") -> str | None:
        if ctx.request is None:
            return None
        header = ctx.request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return token.strip() or None

    def has_credentials(self, ctx: "ExecutionContext") -> bool:
        return self._token(ctx) is not None

    def authenticate(self, ctx: "ExecutionContext") -> None:
        token = self._token(ctx)
        try:
            claims = jwt.decode(token, self.key, algorithms=[self.algorithm],
                                audience=self.audience, issuer=self.issuer, leeway=self.leeway,
                                options={"require": self.require,
                                         "verify_aud": self.audience is not None})
        except jwt.ExpiredSignatureError:
            raise UnauthorizedError("the token has expired", key="JWT_INVALID_TOKEN") from None
        except jwt.InvalidTokenError as exc:
            logger.debug("API %s plan %s: token refused: %s", self.api.id, self.id, exc)
            raise UnauthorizedError("the token is not valid", key="JWT_INVALID_TOKEN") from None
        client_id = next((claims[c] for c in self.client_id_claims if claims.get(c)), None)
        subscription = None
        if client_id is not None:
            matches = [s for s in snapshot_index.subscriptions_of_plan(self.api.runtime.snapshot,
                                                                       self.id)
                       if s.get("client_id") == client_id]
            if matches:
                subscription = next((s for s in matches if s["status"] == "ACCEPTED"), None)
                if subscription is None:
                    raise UnauthorizedError("the subscription of this client is not active",
                                            key="JWT_INVALID_TOKEN")
        ctx.plan = self.plan
        ctx.subscription = subscription
        if subscription is not None:
            ctx.application_id = subscription["application_id"]
        ctx.attributes["jwt.claims"] = claims
