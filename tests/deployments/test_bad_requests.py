"""Bad requests get a 4xx in the one error shape, with a message that says what to fix.

The routes run in process over real adapters (``local``, no Ray); the last tests send bodies through
the real Serve proxy, whose handling of chunked bodies is its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.deployments.conftest import ADMIN_KEY, assert_error
from tests.deployments.test_seed_contract import SEED_REQUEST
from tests.deployments.test_unified import rows

V1 = "/api/v1/auto-ets/inference"
INITIALIZATION = "/api/v1/auto-ets/initialization"
V2 = "/api/v2/forecast"


def seed(**changes: Any) -> dict[str, Any]:
    request = {**SEED_REQUEST, **changes}
    return request


def seed_params(**changes: Any) -> dict[str, Any]:
    return seed(parameters={**SEED_REQUEST["parameters"], **changes})


def unified(**changes: Any) -> dict[str, Any]:
    return {"model": "auto-ets", "horizon": 3, "data": rows({"a": 1.0}), **changes}


def table(lines: list[str]) -> list[dict[str, object]]:
    header, *body = (line.split(",") for line in lines)
    return [dict(zip(header, values, strict=True)) for values in body]


MONTHS = [f"2024-{m:02d}-01" for m in range(1, 13)]
CASES: list[tuple[str, str, dict[str, Any], int, str, str]] = [
    # (name, path, json body, status, code, words in the message)
    ("unknown model v1", "/api/v1/nope/inference", seed(), 404, "model_not_found", "auto-ets"),
    ("unknown model v2", V2, unified(model="nope"), 404, "model_not_found", "available"),
    (
        "unknown column",
        V1,
        seed(data_definition={"price": "target"}),
        422,
        "unknown_column",
        "price",
    ),
    (
        "two targets",
        V1,
        seed(data_definition={"passengers": "target", "volume": "target"}),
        400,
        "",
        "target",
    ),
    ("no target", V1, seed(data_definition={"volume": "dynamic_numerical"}), 400, "", "target"),
    (
        "unknown role",
        V1,
        seed(data_definition={"passengers": "label"}),
        400,
        "invalid_input",
        "data_definition",
    ),
    ("horizon zero v1", V1, seed_params(horizon_len=0), 400, "invalid_input", "horizon_len"),
    ("horizon zero v2", V2, unified(horizon=0), 400, "invalid_input", "horizon"),
    ("horizon too long", V2, unified(horizon=100_000), 400, "invalid_input", "horizon"),
    (
        "quantile index out of range",
        V1,
        seed_params(quantile_indices=[1, 12]),
        400,
        "invalid_input",
        "0-9",
    ),
    ("quantile level out of (0,1)", V2, unified(quantiles=[0.1, 1.5]), 400, "", "quantile"),
    (
        "data and source together",
        V2,
        unified(source="two_series.csv"),
        400,
        "invalid_input",
        "exactly one",
    ),
    (
        "neither data nor source",
        V2,
        {"model": "auto-ets", "horizon": 3},
        400,
        "invalid_input",
        "exactly one",
    ),
    ("unknown field", V2, unified(colour="blue"), 400, "invalid_input", "colour"),
    (
        "path traversal",
        V1,
        seed(data_source_url_or_path="../../../etc/passwd"),
        403,
        "source_forbidden",
        "",
    ),
    (
        "absolute path outside",
        V1,
        seed(data_source_url_or_path="/etc/passwd"),
        403,
        "source_forbidden",
        "",
    ),
    (
        "missing file",
        V1,
        seed(data_source_url_or_path="missing.csv"),
        404,
        "source_not_found",
        "missing.csv",
    ),
    (
        "SSRF loopback",
        V1,
        seed(data_source_url_or_path="http://127.0.0.1:8265/api"),
        403,
        "source_forbidden",
        "",
    ),
    (
        "SSRF metadata",
        V1,
        seed(data_source_url_or_path="http://169.254.169.254/latest/meta-data"),
        403,
        "source_forbidden",
        "",
    ),
    (
        "SSRF localhost name",
        V2,
        unified(data=None, source="http://localhost:6379/x.csv"),
        403,
        "source_forbidden",
        "",
    ),
    ("file scheme", V1, seed(data_source_url_or_path="file:///etc/passwd"), 403, "", ""),
    (
        "duplicate timestamps",
        V2,
        unified(data=table(["unique_id,ds,y", *[f"a,{m},1" for m in MONTHS], "a,2024-03-01,2"])),
        422,
        "duplicate_timestamps",
        "2024-03-01",
    ),
    (
        "unparseable timestamps",
        V2,
        unified(
            data=table(["unique_id,ds,y", *[f"a,{m},1" for m in MONTHS[:-1]], "a,yesterday,1"])
        ),
        422,
        "unparseable_timestamps",
        "yesterday",
    ),
    (
        "missing target in history",
        V2,
        unified(
            data=[
                *table(["unique_id,ds,y", *[f"a,{m},{i}" for i, m in enumerate(MONTHS)]])[:5],
                {"unique_id": "a", "ds": "2024-06-01", "y": None},
                *table(["unique_id,ds,y", *[f"a,{m},1" for m in MONTHS[6:]]]),
            ]
        ),
        422,
        "missing_target_values",
        "",
    ),
    (
        "series too short",
        V2,
        unified(data=table(["unique_id,ds,y", "a,2024-01-01,1", "a,2024-02-01,2"])),
        422,
        "series_too_short",
        "a",
    ),
    (
        "covariates to a model without them",
        V2,
        unified(
            data=[{**r, "temp": 1.0} for r in rows({"a": 1.0})],
            covariates={"temp": "static_numerical"},
        ),
        400,
        "covariates_not_supported",
        "auto-ets",
    ),
]


@pytest.mark.parametrize(
    ("path", "body", "status", "code", "words"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bad_json_requests(
    local: httpx.Client, path: str, body: dict, status: int, code: str, words: str
) -> None:
    error = assert_error(local.post(path, json=body), status, code or None)
    assert words.lower() in error["message"].lower()


def test_malformed_json(local: httpx.Client) -> None:
    headers = {"Content-Type": "application/json"}
    assert_error(local.post(V1, content=b"{not json", headers=headers), 400, "invalid_input")
    assert_error(local.post(V2, content=b"{not json", headers=headers), 400, "invalid_input")


@pytest.mark.parametrize("path", [V1, INITIALIZATION, V2, "/api/v2/backtest"])
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_body_that_is_not_json_gets_the_same_answer_on_every_route(
    local: httpx.Client, path: str, content_type: str | None
) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}  # /initialization needs an admin key
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = local.post(path, content=b'{"horizon": 3}', headers=headers)
    error = assert_error(response, 400, "unsupported_format")
    assert error["message"].startswith(f"unsupported content type '{content_type or 'none'}'")
    assert "send application/json" in error["message"]


def test_a_refused_key_is_answered_before_the_content_type(local: httpx.Client) -> None:
    response = local.post(INITIALIZATION, content=b"{}", headers={"Content-Type": "text/plain"})
    assert_error(response, 403, "forbidden")


def test_oversized_body(local: httpx.Client) -> None:
    body = b'{"pad": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    response = local.post(V2, content=body, headers={"Content-Type": "application/json"})
    assert "limit" in assert_error(response, 413, "payload_too_large")["message"]


def test_upload_without_file_part(local: httpx.Client) -> None:
    response = local.post(
        V2, data={"request": '{"model": "auto-ets", "horizon": 3}'}, files={"other": ("x", b"1")}
    )
    assert "'file'" in assert_error(response, 400, "invalid_input")["message"]


def test_upload_with_bad_request_part(local: httpx.Client) -> None:
    response = local.post(
        V2, files={"file": ("a.csv", b"unique_id,ds,y\n")}, data={"request": "{oops"}
    )
    assert "not valid JSON" in assert_error(response, 400, "invalid_input")["message"]


def test_upload_of_an_unsupported_format(local: httpx.Client) -> None:
    response = local.post(
        V2,
        files={"file": ("book.xlsx", b"PK\x03\x04 not a csv")},
        data={"request": '{"model": "auto-ets", "horizon": 3}'},
    )
    assert_error(response, 400, "unsupported_format")


def test_unknown_route_and_method(local: httpx.Client) -> None:
    assert_error(local.get("/api/v9/nothing"), 404, "not_found")
    assert_error(local.get(V2), 405, "method_not_allowed")


def test_service_keeps_serving_after_bad_requests(client: httpx.Client) -> None:
    response = client.post(V1, json=SEED_REQUEST)
    assert response.status_code == 200
    assert client.get("/health").json()["models"]["auto-ets"]["status"] == "ready"


def test_oversized_chunked_body_without_content_length(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(12):
            yield b" " * (256 * 1024)

    for path in (V1, V2):
        response = client.post(path, content=chunks(), headers={"Content-Type": "application/json"})
        assert "limit" in assert_error(response, 413, "payload_too_large")["message"]


def test_chunked_body_under_the_cap_is_served(client: httpx.Client) -> None:
    body = json.dumps(SEED_REQUEST).encode()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 64):
            yield body[start : start + 64]

    response = client.post(V1, content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
