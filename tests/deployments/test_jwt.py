"""JWT bearer tokens beside API keys: HS256 and RS256 (JWKS file and URL), every refusal with
what is wrong, scopes to rights, and the subject as the caller. In process; one test over the real
Serve instance."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from deployments.options import IngressOptions, JwtOptions
from sapheneia.data import DataLimits
from sapheneia.keys import digest
from sapheneia.settings import Settings
from tests.deployments.conftest import API_KEY, assert_error

SECRET = "hs256-shared-secret-0123456789abcdef"
AUDIENCE = "https://sapheneia.test"
ISSUER = "https://issuer.test"
FORECAST, ADMIN = "sapheneia:forecast", "sapheneia:admin"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**overrides: Any) -> dict[str, Any]:
    base = {
        "sub": "alice",
        "aud": AUDIENCE,
        "iss": ISSUER,
        "exp": int(time.time()) + 86400,  # built at collection: outlives the suite
        "scope": f"openid {FORECAST}",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def hs256(secret: str = SECRET, **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), secret, algorithm="HS256")


def handmade(header: dict[str, Any], body: dict[str, Any], secret: bytes | None) -> str:
    """A token signed here with HMAC-SHA256 (or unsigned), for what PyJWT refuses to produce."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(body).encode())}"
    signature = (
        b"" if secret is None else hmac.new(secret, signing_input.encode(), "sha256").digest()
    )
    return f"{signing_input}.{b64(signature)}"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, str]:
    """RFC 7518 section 6.3.1, written from the key's numbers rather than by PyJWT."""
    numbers = key.public_key().public_numbers()

    def uint(value: int) -> str:
        return b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))

    return {"kty": "RSA", "kid": kid, "use": "sig", "n": uint(numbers.n), "e": uint(numbers.e)}


def rs256(key: rsa.RSAPrivateKey, kid: str = "k1", **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), key, algorithm="RS256", headers={"kid": kid})


def app_client(data_dir: Path, jwt_options: JwtOptions, **options: Any) -> TestClient:
    from deployments.api import create_api
    from tests.deployments.local_gateway import LocalGateway

    ingress = IngressOptions(
        key_digests=[digest(API_KEY)],
        limits=DataLimits(data_dir=data_dir),
        jwt=jwt_options,
        **{"rate_limit_per_minute": 100_000, **options},
    )
    return TestClient(create_api(LocalGateway(["auto-ets"], ingress)))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def jwks_file(rsa_key: rsa.RSAPrivateKey, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    path.write_text(json.dumps({"keys": [public_jwk(rsa_key, "k1")]}))
    return path


@pytest.fixture(scope="module")
def both(data_dir: Path, jwks_file: Path) -> TestClient:
    """HS256 and RS256 (the JWKS file) accepted, options built from Settings as at start."""
    from deployments.jwt_auth import jwt_options

    settings = Settings(
        jwt_hs256_secret=SECRET,
        jwt_jwks=str(jwks_file),
        jwt_audience=AUDIENCE,
        jwt_issuer=ISSUER,
    )
    options = jwt_options(settings)
    assert options is not None
    return app_client(data_dir, options)


@pytest.fixture(scope="module")
def rs_only(data_dir: Path, rsa_key: rsa.RSAPrivateKey) -> TestClient:
    jwks = {"keys": [public_jwk(rsa_key, "k1")]}
    return app_client(data_dir, JwtOptions(audience=AUDIENCE, jwks=jwks))


def test_an_hs256_token_is_accepted_and_keys_still_work(both: TestClient) -> None:
    assert both.get("/api/v2/models", headers=bearer(hs256())).status_code == 200
    assert both.get("/api/v2/models", headers=bearer(API_KEY)).status_code == 200
    response = both.get("/api/v2/models", headers=bearer("nope"))
    assert assert_error(response, 401, "unauthorized")["message"] == "invalid API key"


def test_an_rs256_token_from_the_jwks_file_is_accepted(
    both: TestClient, rsa_key: rsa.RSAPrivateKey
) -> None:
    assert both.get("/api/v2/models", headers=bearer(rs256(rsa_key))).status_code == 200
    response = both.get("/api/v2/models", headers=bearer(rs256(rsa_key, kid="k9")))
    assert (
        assert_error(response, 401)["message"] == "JWT key id 'k9' is not in the server's key set"
    )
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    response = both.get("/api/v2/models", headers=bearer(rs256(other)))
    assert assert_error(response, 401)["message"] == "JWT signature does not verify"


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (hs256(exp=int(time.time()) - 120), "JWT has expired: get a new token"),
        (
            hs256(aud="https://other.test"),
            f"JWT audience is wrong: request a token for audience '{AUDIENCE}'",
        ),
        (hs256(iss="https://evil.test"), f"JWT issuer is wrong: this server trusts '{ISSUER}'"),
        (hs256(secret="another-secret-0123456789abcdefgh"), "JWT signature does not verify"),
        (hs256(exp=None), "JWT lacks the 'exp' claim"),
        (hs256(aud=None), "JWT lacks the 'aud' claim"),
        (hs256(sub=None), "JWT lacks the 'sub' claim"),
        (hs256(sub=""), "JWT 'sub' claim is empty: the token must name its subject"),
        (
            hs256(nbf=int(time.time()) + 43200),  # built at collection: stays ahead of the suite
            "JWT is not valid yet (its 'nbf' or 'iat' is in the future)",
        ),
        (
            handmade({"alg": "none", "typ": "JWT"}, claims(), None),
            "JWT algorithm 'none' is not accepted; this server accepts HS256, RS256",
        ),
        (
            handmade({"alg": "HS512"}, claims(), SECRET.encode()),
            "JWT algorithm 'HS512' is not accepted; this server accepts HS256, RS256",
        ),
        ("bm90IGpzb24.e30.c2ln", "malformed JWT: its header is not base64url-encoded JSON"),
    ],
    ids=[
        "expired",
        "audience",
        "issuer",
        "signature",
        "no-exp",
        "no-aud",
        "no-sub",
        "empty-sub",
        "not-yet",
        "alg-none",
        "alg-hs512",
        "malformed",
    ],
)
def test_a_bad_token_is_refused_saying_why(both: TestClient, token: str, message: str) -> None:
    response = both.get("/api/v2/models", headers=bearer(token))
    assert assert_error(response, 401, "unauthorized")["message"] == message


def test_expiry_allows_the_configured_leeway(both: TestClient) -> None:
    # Expired 10 s ago: inside the default 30 s of clock skew.
    token = hs256(exp=int(time.time()) - 10)
    assert both.get("/api/v2/models", headers=bearer(token)).status_code == 200


def test_an_hs256_token_signed_with_the_rsa_public_key_is_refused(
    both: TestClient, rs_only: TestClient, rsa_key: rsa.RSAPrivateKey
) -> None:
    """Algorithm confusion: the public key (which anyone may hold) used as an HMAC secret."""
    pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for key_bytes in (pem, pem.strip()):
        token = handmade({"alg": "HS256", "kid": "k1"}, claims(), key_bytes)
        response = rs_only.get("/api/v2/models", headers=bearer(token))
        message = assert_error(response, 401, "unauthorized")["message"]
        assert message == "JWT algorithm 'HS256' is not accepted; this server accepts RS256"
        # With HS256 on as well, the token is checked against the secret only.
        response = both.get("/api/v2/models", headers=bearer(token))
        assert assert_error(response, 401)["message"] == "JWT signature does not verify"


def test_a_jwt_without_jwt_configured_is_an_invalid_key(local_anonymous: TestClient) -> None:
    response = local_anonymous.get("/api/v2/models", headers=bearer(hs256()))
    message = assert_error(response, 401, "unauthorized")["message"]
    assert message == "invalid API key (this server accepts no JWT bearer tokens)"


def test_scopes_grant_forecast_and_admin_rights(both: TestClient) -> None:
    path = "/api/v1/auto-ets/initialization"
    response = both.post(path, headers=bearer(hs256()))
    message = assert_error(response, 403, "forbidden")["message"]
    assert message == (
        f"changing a model's state needs a token with the '{ADMIN}' scope; this token may "
        "forecast, backtest and read only"
    )
    assert both.post(path, headers=bearer(hs256(scope=ADMIN))).status_code == 200
    # A list of scopes (some issuers send one) is read as well as a space-separated string.
    assert both.post(path, headers=bearer(hs256(scope=["openid", ADMIN]))).status_code == 200


@pytest.mark.parametrize("scope", [None, "openid profile", ["sapheneia:read"], 7])
def test_a_valid_token_without_the_forecast_scope_is_forbidden(
    both: TestClient, scope: object
) -> None:
    response = both.get("/api/v2/models", headers=bearer(hs256(scope=scope)))
    message = assert_error(response, 403, "forbidden")["message"]
    assert message == (
        f"this token lacks the '{FORECAST}' scope (in its 'scope' claim): ask the issuer for a "
        "token with that scope"
    )


def test_the_scope_claim_and_values_are_configurable(data_dir: Path) -> None:
    options = JwtOptions(
        audience=AUDIENCE,
        hs256_secret=SECRET,
        scope_claim="scp",
        forecast_scope="predict",
        admin_scope="operate",
    )
    client = app_client(data_dir, options)
    assert client.get("/api/v2/models", headers=bearer(hs256(scp="predict"))).status_code == 200
    response = client.get("/api/v2/models", headers=bearer(hs256(scope=FORECAST)))
    assert (
        "lacks the 'predict' scope (in its 'scp' claim)" in assert_error(response, 403)["message"]
    )


def test_the_subject_is_the_caller() -> None:
    from deployments.auth import KeyChecker
    from deployments.jwt_auth import JwtVerifier

    checker = KeyChecker(
        [digest(API_KEY)], jwt=JwtVerifier(JwtOptions(audience=AUDIENCE, hs256_secret=SECRET))
    )
    first = checker.check(f"Bearer {hs256(jti='1')}")
    second = checker.check(f"Bearer {hs256(jti='2', scope=ADMIN)}")
    expected = hashlib.sha256(b"\0jwt\0alice").hexdigest()
    assert (first.key_digest, first.admin) == (expected, False)
    assert (second.key_digest, second.admin) == (expected, True)
    assert first.key_id == expected[:12]
    # A subject with a key's text is not that key's caller.
    assert checker.check(f"Bearer {hs256(sub=API_KEY)}").key_digest != digest(API_KEY)


def test_tokens_of_one_subject_share_one_rate_limit(data_dir: Path) -> None:
    options = JwtOptions(audience=AUDIENCE, hs256_secret=SECRET)
    client = app_client(data_dir, options, rate_limit_per_minute=3)
    for n in range(3):
        token = hs256(jti=str(n), iat=int(time.time()) - n)
        assert client.get("/api/v2/models", headers=bearer(token)).status_code == 200
    response = client.get("/api/v2/models", headers=bearer(hs256(jti="fresh")))
    assert "rate limit of 3 requests per minute" in assert_error(response, 429)["message"]
    assert client.get("/api/v2/models", headers=bearer(hs256(sub="bob"))).status_code == 200


def test_bad_tokens_count_as_failed_authentications(data_dir: Path) -> None:
    options = JwtOptions(audience=AUDIENCE, hs256_secret=SECRET)
    client = app_client(data_dir, options, auth_failures_per_minute=2)
    for _ in range(2):
        assert_error(client.get("/api/v2/models", headers=bearer(hs256(secret="x" * 32))), 401)
    assert_error(client.get("/api/v2/models", headers=bearer(hs256())), 429, "rate_limited")


class JwksServer:
    """A JWKS on loopback over plain HTTP, counting fetches; ``keys = None`` answers 500."""

    def __init__(self, keys: list[dict[str, str]]) -> None:
        self.keys: list[dict[str, str]] | None = keys
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches += 1
                if outer.keys is None:
                    self.send_response(500)
                    self.end_headers()
                    return
                body = json.dumps({"keys": outer.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def jwks_server(rsa_key: rsa.RSAPrivateKey) -> Iterator[JwksServer]:
    server = JwksServer([public_jwk(rsa_key, "k1")])
    yield server
    server.close()


def test_a_jwks_url_is_fetched_once_and_cached(
    data_dir: Path, jwks_server: JwksServer, rsa_key: rsa.RSAPrivateKey
) -> None:
    client = app_client(data_dir, JwtOptions(audience=AUDIENCE, jwks_url=jwks_server.url))
    for _ in range(3):
        assert client.get("/api/v2/models", headers=bearer(rs256(rsa_key))).status_code == 200
    assert jwks_server.fetches == 1
    # Made-up key ids right after a fetch: no refetch within the interval, however many arrive.
    for kid in ("x1", "x2", "x3"):
        assert_error(client.get("/api/v2/models", headers=bearer(rs256(rsa_key, kid=kid))), 401)
    assert jwks_server.fetches == 1


def test_a_rotated_key_is_found_by_refetching(
    data_dir: Path, jwks_server: JwksServer, rsa_key: rsa.RSAPrivateKey
) -> None:
    from deployments.jwt_auth import JwtVerifier

    verifier = JwtVerifier(JwtOptions(audience=AUDIENCE, jwks_url=jwks_server.url))
    assert verifier.verify(rs256(rsa_key)).subject == "alice"
    rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks_server.keys = [public_jwk(rotated, "k2")]
    verifier._fetched_at -= 60  # the refetch interval has passed
    assert verifier.verify(rs256(rotated, kid="k2")).subject == "alice"
    assert jwks_server.fetches == 2


def test_an_unreachable_jwks_url_answers_503(data_dir: Path, jwks_server: JwksServer) -> None:
    jwks_server.keys = None
    client = app_client(data_dir, JwtOptions(audience=AUDIENCE, jwks_url=jwks_server.url))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    response = client.get("/api/v2/models", headers=bearer(rs256(key)))
    error = assert_error(response, 503, "auth_unavailable")
    assert "retry shortly" in error["message"]
    assert response.headers["retry-after"] == "30"
    # API keys do not depend on the issuer.
    assert client.get("/api/v2/models", headers=bearer(API_KEY)).status_code == 200


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"jwt_hs256_secret": SECRET}, "SAPHENEIA_JWT_AUDIENCE is required"),
        (
            {"jwt_hs256_secret": "short-secret", "jwt_audience": AUDIENCE},
            "SAPHENEIA_JWT_HS256_SECRET is 12 characters; it must be at least 32",
        ),
        (
            {"jwt_jwks": "http://issuer.test/jwks.json", "jwt_audience": AUDIENCE},
            "SAPHENEIA_JWT_JWKS must be an https URL (plain http only to a loopback address)",
        ),
        (
            {"jwt_jwks": "/nonexistent/jwks.json", "jwt_audience": AUDIENCE},
            "JWKS file /nonexistent/jwks.json (SAPHENEIA_JWT_JWKS) does not exist",
        ),
    ],
    ids=["no-audience", "short-secret", "http-url", "missing-file"],
)
def test_bad_jwt_settings_stop_the_start(settings: dict[str, str], message: str) -> None:
    from deployments.jwt_auth import JwtConfigError, jwt_options

    with pytest.raises(JwtConfigError) as raised:
        jwt_options(Settings(**settings))
    assert message in str(raised.value)
    assert SECRET not in str(raised.value)


def test_a_jwks_file_without_an_rsa_signing_key_stops_the_start(tmp_path: Path) -> None:
    from deployments.jwt_auth import JwtConfigError, jwt_options

    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [{"kty": "oct", "k": b64(b"0" * 32)}]}))
    with pytest.raises(JwtConfigError, match="holds no RSA signing key for RS256"):
        jwt_options(Settings(jwt_jwks=str(path), jwt_audience=AUDIENCE))


def test_no_jwt_settings_means_jwt_off() -> None:
    from deployments.jwt_auth import jwt_options

    assert jwt_options(Settings()) is None


@pytest.fixture(scope="module")
def jwt_url(
    serve_url: str, data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """An application of its own on the session's Serve instance (``/jwt``), with HS256 on."""
    from tests.deployments.cluster_load import own_app

    state = tmp_path_factory.mktemp("jwt-state")
    secret = {"jwt_hs256_secret": SECRET, "jwt_audience": AUDIENCE}
    with own_app(serve_url, "jwt", data_dir, state, **secret) as url:
        yield url


def test_a_jwt_works_over_http_on_serve(jwt_url: str) -> None:
    """Through Ray Serve's proxy to the ingress replica (the options travelled with the secret)
    and on to a model."""
    from sapheneia.testing import wavy_series
    from tests.deployments.test_served_timesfm import forecast_request

    body = forecast_request("seasonal-naive", "s1", wavy_series(60, seed=1), horizon=7)
    response = httpx.post(
        f"{jwt_url}/api/v2/forecast", json=body, headers=bearer(hs256()), timeout=60
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["forecast"]) == 7
    expired = bearer(hs256(exp=int(time.time()) - 120))
    response = httpx.get(f"{jwt_url}/api/v2/models", headers=expired, timeout=30)
    assert (
        assert_error(response, 401, "unauthorized")["message"] == "JWT has expired: get a new token"
    )
    response = httpx.post(
        f"{jwt_url}/api/v1/seasonal-naive/initialization", headers=bearer(hs256()), timeout=30
    )
    assert "'sapheneia:admin' scope" in assert_error(response, 403, "forbidden")["message"]
