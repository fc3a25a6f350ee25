"""JWT bearer tokens beside API keys: HS256 with a shared secret, RS256 with keys from a JWKS.

PyJWT does the cryptography and the claim checks; this module only picks the one key that the
configured algorithm allows (so an HS256 token can never be checked against an RS256 public key
used as a secret) and turns each failure into a message that says what is wrong.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt

from deployments.options import JwtOptions
from sapheneia.errors import AuthUnavailable, Unauthorized
from sapheneia.settings import Settings

logger = logging.getLogger(__name__)

# Three base64url parts; the last may be empty (alg "none"), which is then refused by name.
JWT_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
# RFC 7518 section 3.2: an HS256 key must be at least as long as the hash, 256 bits.
MIN_SECRET_CHARS = 32
# A token naming an unknown key id refetches the JWKS (the issuer rotated its keys) at most this
# often, so made-up key ids cannot turn every request into a fetch.
REFETCH_INTERVAL_S = 30.0


class JwtConfigError(ValueError):
    """A JWT setting that would leave tokens unchecked or unusable; stops the start."""


def looks_like_jwt(value: str) -> bool:
    return JWT_SHAPE.match(value) is not None


def jwt_options(settings: Settings) -> JwtOptions | None:
    """The JWT options from ``settings``, checked at start; None when JWT is not configured."""
    if not settings.jwt_hs256_secret and not settings.jwt_jwks:
        return None
    if not settings.jwt_audience:
        raise JwtConfigError(
            "SAPHENEIA_JWT_AUDIENCE is required with SAPHENEIA_JWT_HS256_SECRET or "
            "SAPHENEIA_JWT_JWKS: set it to the 'aud' your issuer puts in tokens for this API"
        )
    if settings.jwt_hs256_secret and len(settings.jwt_hs256_secret) < MIN_SECRET_CHARS:
        raise JwtConfigError(
            f"SAPHENEIA_JWT_HS256_SECRET is {len(settings.jwt_hs256_secret)} characters; it must "
            f"be at least {MIN_SECRET_CHARS}: generate one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    jwks, jwks_url = None, ""
    if settings.jwt_jwks.startswith(("https://", "http://")):
        jwks_url = checked_url(settings.jwt_jwks)
    elif settings.jwt_jwks:
        jwks = read_jwks_file(Path(settings.jwt_jwks))
    return JwtOptions(
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
        hs256_secret=settings.jwt_hs256_secret or None,  # type: ignore[arg-type]
        jwks=jwks,
        jwks_url=jwks_url,
        jwks_timeout_s=settings.jwt_jwks_timeout_s,
        jwks_cache_s=settings.jwt_jwks_cache_s,
        leeway_s=settings.jwt_leeway_s,
        scope_claim=settings.jwt_scope_claim,
        forecast_scope=settings.jwt_forecast_scope,
        admin_scope=settings.jwt_admin_scope,
    )


def checked_url(url: str) -> str:
    """``url`` if keys fetched from it cannot be swapped on the way: https, or http to loopback."""
    parts = urlsplit(url)
    if parts.scheme == "http" and not is_loopback(parts.hostname or ""):
        raise JwtConfigError(
            "SAPHENEIA_JWT_JWKS must be an https URL (plain http only to a loopback address): "
            "keys fetched over plain http could be replaced by anyone on the path"
        )
    return url


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_jwks_file(path: Path) -> dict[str, Any]:
    try:
        jwks = json.loads(path.read_text())
        usable_keys(jwt.PyJWKSet.from_dict(jwks))
    except FileNotFoundError:
        raise JwtConfigError(f"JWKS file {path} (SAPHENEIA_JWT_JWKS) does not exist") from None
    except (ValueError, AttributeError, jwt.PyJWTError) as error:
        raise JwtConfigError(
            f"JWKS file {path} (SAPHENEIA_JWT_JWKS) is unusable: {error}"
        ) from None
    if not isinstance(jwks, dict):
        raise JwtConfigError(f"JWKS file {path} (SAPHENEIA_JWT_JWKS) is not a JSON object")
    return jwks


def usable_keys(keys: jwt.PyJWKSet) -> list[jwt.PyJWK]:
    """The RS256 signing keys of a JWKS (encryption keys and other algorithms left out)."""
    usable = [
        key
        for key in keys
        if key.key_type == "RSA" and key.algorithm_name == "RS256" and key.public_key_use != "enc"
    ]
    if not usable:
        raise jwt.PyJWKSetError("it holds no RSA signing key for RS256")
    return usable


@dataclass(frozen=True)
class Grant:
    """What a verified token says: whose it is and which scopes it carries."""

    subject: str
    scopes: frozenset[str]


class JwtVerifier:
    """Verifies tokens for one ingress replica; a JWKS URL is fetched lazily and cached."""

    def __init__(self, options: JwtOptions) -> None:
        self.options = options
        self.algorithms = []
        if options.hs256_secret is not None:
            self.algorithms.append("HS256")
        if options.jwks is not None or options.jwks_url:
            self.algorithms.append("RS256")
        self._keys = usable_keys(jwt.PyJWKSet.from_dict(options.jwks)) if options.jwks else []
        self._fetched_at = -float("inf")

    def verify(self, token: str) -> Grant:
        """The grant of a valid token; raises ``Unauthorized`` saying what is wrong otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("malformed JWT: its header is not base64url-encoded JSON") from None
        algorithm = header.get("alg")
        if algorithm not in self.algorithms:
            raise Unauthorized(
                f"JWT algorithm {algorithm!r} is not accepted; this server accepts "
                f"{', '.join(self.algorithms)}"
            )
        key: Any
        if algorithm == "HS256":
            assert self.options.hs256_secret is not None  # HS256 is accepted only with a secret
            key = self.options.hs256_secret.get_secret_value()
        else:
            key = self._public_key(header.get("kid"))
        claims = self._decode(token, key, algorithm)
        subject = claims["sub"]
        if not subject:
            raise Unauthorized("JWT 'sub' claim is empty: the token must name its subject")
        return Grant(subject, self._scopes(claims.get(self.options.scope_claim)))

    def _decode(self, token: str, key: Any, algorithm: str) -> dict[str, Any]:
        options = self.options
        required = ["exp", "sub", "aud", *(["iss"] if options.issuer else [])]
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=options.audience,
                issuer=options.issuer or None,
                leeway=options.leeway_s,
                options={"require": required},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("JWT has expired: get a new token") from None
        except jwt.ImmatureSignatureError:
            raise Unauthorized(
                "JWT is not valid yet (its 'nbf' or 'iat' is in the future)"
            ) from None
        except jwt.MissingRequiredClaimError as error:
            raise Unauthorized(f"JWT lacks the '{error.claim}' claim") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized(
                f"JWT audience is wrong: request a token for audience '{options.audience}'"
            ) from None
        except jwt.InvalidIssuerError:
            raise Unauthorized(
                f"JWT issuer is wrong: this server trusts '{options.issuer}'"
            ) from None
        except jwt.InvalidSignatureError:
            raise Unauthorized("JWT signature does not verify") from None
        except jwt.PyJWTError as error:
            raise Unauthorized(f"invalid JWT: {error}") from None
        return claims

    def _scopes(self, value: object) -> frozenset[str]:
        # OAuth 2.0 (RFC 8693) sends scopes as one space-separated string; some issuers, a list.
        if isinstance(value, str):
            return frozenset(value.split())
        if isinstance(value, list):
            return frozenset(v for v in value if isinstance(v, str))
        return frozenset()

    def _public_key(self, kid: object) -> Any:
        url = self.options.jwks_url
        if url and time.monotonic() - self._fetched_at > self.options.jwks_cache_s:
            self._fetch()
        key = self._find(kid)
        if key is None and url and time.monotonic() - self._fetched_at > REFETCH_INTERVAL_S:
            self._fetch()
            key = self._find(kid)
        if key is None:
            if kid is None:
                raise Unauthorized(
                    "JWT has no 'kid' header and the key set holds several keys: the issuer "
                    "must name its signing key"
                )
            raise Unauthorized(f"JWT key id {kid!r} is not in the server's key set")
        return key.key

    def _find(self, kid: object) -> jwt.PyJWK | None:
        if kid is None:
            return self._keys[0] if len(self._keys) == 1 else None
        return next((k for k in self._keys if k.key_id == kid), None)

    def _fetch(self) -> None:
        """Refresh the keys from the JWKS URL; on failure keep the last keys, if any."""
        self._fetched_at = time.monotonic()  # failures count too: a down issuer is not hammered
        try:
            # Blocks this replica's event loop for at most the timeout, at most once per
            # REFETCH_INTERVAL_S (or per cache period): a fetch is rare next to the requests.
            response = httpx.get(self.options.jwks_url, timeout=self.options.jwks_timeout_s)
            response.raise_for_status()
            self._keys = usable_keys(jwt.PyJWKSet.from_dict(response.json()))
        except (httpx.HTTPError, ValueError, AttributeError, jwt.PyJWTError) as error:
            logger.warning("JWKS fetch from SAPHENEIA_JWT_JWKS failed: %s", error)
            if not self._keys:
                raise AuthUnavailable(
                    "the key set that verifies JWTs cannot be fetched now; retry shortly, or "
                    "use an API key"
                ) from None
