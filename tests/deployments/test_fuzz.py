"""Schemathesis against /openapi.json: no server errors, and every answer as the document says.

The in-process app (real statsforecast adapters, no Ray; an instance of its own, see ``fuzz_app``)
is fuzzed with a forecast key, with a fixed seed and a bounded number of examples per operation, so that every run sends the same
requests and takes a couple of minutes on two cores:

- every route and method, from the document alone (valid and invalid inputs both);
- the same with the path's model set to a served one, so the routes get past the model lookup;
- the lifecycle routes with an admin key;
- forecast, backtest and inference with tables that look like real data (dates at a frequency,
  several series, missing values, covariates, uploads) but with hostile details, which random
  JSON never reaches: the checks then cover the data path down to the adapters.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from deployments.api import create_api
from tests.deployments.conftest import ADMIN_KEY, API_KEY, LOCAL_MODELS
from tests.deployments.local_gateway import LocalGateway

AUTH = {"Authorization": f"Bearer {API_KEY}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Per operation and generation mode; the run's length scales with these.
EXAMPLES = 50
TABLE_EXAMPLES = 60

# derandomize: the seed comes from the test itself, so every run sends the same requests.
# No shrinking: a failure is reported as found, which keeps the run's length bounded.
FIXED = settings(
    derandomize=True,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)

Failure = str | None


def first_failure(label: str, run: Callable[[], None]) -> Failure:
    """The report of the first failing case of ``run``, or None."""
    try:
        run()
    except (Exception, FailureGroup) as failure:  # FailureGroup is a BaseExceptionGroup
        return f"{label}: {failure}"
    return None


def fuzz(
    operation: schemathesis.APIOperation,
    mode: GenerationMode,
    headers: dict[str, str],
    path_parameters: dict[str, Any] | None = None,
) -> Failure:
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
    @settings(FIXED, max_examples=EXAMPLES)
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    def run_or_skip() -> None:
        try:
            run()
        except Unsatisfiable:
            # Negative mode on an operation with no inputs: there is nothing to make invalid.
            if mode is not GenerationMode.NEGATIVE:
                raise

    fixed = f" with {path_parameters}" if path_parameters else ""
    return first_failure(f"{operation.label} ({mode.value}{fixed})", run_or_skip)


# Every route the app serves; a new one is added here, so that it is fuzzed too.
ROUTES = {
    "GET /",
    "GET /health",
    "GET /info",
    "GET /models",
    "POST /api/v1/{model}/initialization",
    "GET /api/v1/{model}/status",
    "POST /api/v1/{model}/shutdown",
    "POST /api/v1/{model}/inference",
    "GET /api/v2/models",
    "GET /api/v2/traffic",
    "POST /api/v2/forecast",
    "POST /api/v2/backtest",
    "POST /api/v2/anomalies",
}
# Batch jobs run on Ray, which the in-process app has not (there they answer 503 "not enabled"):
# their answers to bad submissions are tested over the real service in test_jobs.py.
JOB_ROUTES = {
    "POST /api/v2/jobs",
    "GET /api/v2/jobs",
    "GET /api/v2/jobs/{job_id}",
    "DELETE /api/v2/jobs/{job_id}",
    "GET /api/v2/jobs/{job_id}/result",
    "GET /api/v2/jobs/{job_id}/events",
}


def operations(schema: schemathesis.BaseSchema) -> list[schemathesis.APIOperation]:
    found = [result.ok() for result in schema.get_all_operations()]
    assert {o.label for o in found} == ROUTES | JOB_ROUTES
    return [o for o in found if o.label in ROUTES]


def fuzz_all(
    ops: list[schemathesis.APIOperation], headers: dict[str, str], model: str | None = None
) -> list[str]:
    failures = []
    for operation in ops:
        fixed = {"model": model} if model and "{model}" in operation.path else None
        if model and fixed is None:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if (failure := fuzz(operation, mode, headers, fixed)) is not None:
                failures.append(failure)
    return failures


def fuzz_app(local_gateway: LocalGateway) -> FastAPI:
    """An app of its own over the session's options: the fuzzer's many bad keys would otherwise
    trip the shared app's failed-authentication limit (429 for a minute) for the tests after it,
    and its admin calls shut models down."""
    options = local_gateway.options.model_copy(update={"auth_failures_per_minute": 1_000_000})
    return create_api(LocalGateway(LOCAL_MODELS, options))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def app_schema(local_gateway: LocalGateway) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_app(local_gateway), headers=AUTH)


@pytest.fixture(scope="module")
def admin_schema(local_gateway: LocalGateway) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_app(local_gateway), headers=ADMIN)


def test_every_route_answers_as_documented(app_schema: schemathesis.BaseSchema) -> None:
    ops = operations(app_schema)
    failures = fuzz_all(ops, AUTH) + fuzz_all(ops, AUTH, model=LOCAL_MODELS[0])
    assert not failures, "\n\n".join(failures)


def test_lifecycle_routes_answer_as_documented_to_an_admin(
    admin_schema: schemathesis.BaseSchema,
) -> None:
    ops = [o for o in operations(admin_schema) if o.path.startswith("/api/v1/")]
    failures = fuzz_all(ops, ADMIN, model=LOCAL_MODELS[0])
    assert not failures, "\n\n".join(failures)


# --- Tables that look like real data -----------------------------------------------------------

FREQS = ["D", "MS", "ME", "h", "W", "B", "15min", "QS", "YE"]
SOURCES = [
    "two_series.csv",
    "uploads/sample_data.csv",
    "sample_data.csv",
    "missing.csv",
    "../outside.csv",
    "/etc/passwd",
    "uploads",
    "http://127.0.0.1:9/data.csv",
    "file:///etc/passwd",
    "",
]
TIMESTAMP_TEXT = st.one_of(
    st.sampled_from(["", "not a date", "2024-13-01", "0000-01-01", "9999-12-31T23:59:59", "1e9"]),
    st.text(max_size=12),
)


# What a table request may get wrong, one at a time; None (most draws) gets nothing wrong.
MISTAKES = [
    "missing_target",
    "bad_timestamp",
    "repeated_row",
    "text_covariate",
    "short",
    "empty",
    "bad_quantile",
    "default_names",
    "bad_freq",
    "huge_values",
]
MISTAKE = st.sampled_from([None] * len(MISTAKES) + MISTAKES)


@st.composite
def long_table(
    draw: st.DrawFn, mistake: str | None, id_column: str, timestamp_column: str, target: str
) -> list[dict]:
    """Rows ``id, timestamp, target, price`` for a few series at a frequency, in any order."""
    freq = draw(st.sampled_from(FREQS))
    start = draw(st.sampled_from(["2024-01-01", "1990-02-28", "2024-02-29 13:30", "1700-01-01"]))
    shortest = 1 if mistake == "short" else 30
    rows: list[dict] = []
    for index in range(draw(st.integers(1, 3))):
        series_id: object = draw(st.sampled_from([f"s{index}", index, "ü/../x" * (index + 1)]))
        length = 0 if mistake == "empty" else draw(st.integers(shortest, shortest + 30))
        try:
            stamps = pd.date_range(start, periods=length, freq=freq)
        except (ValueError, OverflowError, pd.errors.OutOfBoundsDatetime):
            stamps = pd.DatetimeIndex([])
        level = draw(st.floats(-1e3, 1e3))
        for step, stamp in enumerate(stamps):
            value: object = level + draw(st.floats(-10, 10)) + step % 7
            if mistake == "huge_values":
                value = draw(st.sampled_from([1e300, -1e300, 5e-324, 10**20, 0.0]))
            rows.append({id_column: series_id, timestamp_column: stamp.isoformat(), target: value})
    for row in rows:
        row["price"] = draw(st.floats(0, 100))
    if rows:
        at = draw(st.integers(0, len(rows) - 1))
        if mistake == "missing_target":
            rows[at][target] = None
        elif mistake == "bad_timestamp":
            rows[at][timestamp_column] = draw(TIMESTAMP_TEXT)
        elif mistake == "repeated_row":
            rows.append(dict(rows[at]))
        elif mistake == "text_covariate":
            rows[at]["price"] = draw(st.sampled_from(["a", "", None]))
    if draw(st.booleans()):
        rows = draw(st.permutations(rows))
    return rows


@st.composite
def table_fields(draw: st.DrawFn, backtest: bool) -> tuple[dict[str, Any], list[dict]]:
    """A forecast or backtest request without its rows, and the rows."""
    mistake = draw(MISTAKE)
    id_column = draw(st.sampled_from(["unique_id", "store"]))
    timestamp_column = draw(st.sampled_from(["ds", "date"]))
    target = draw(st.sampled_from(["y", "sales"]))
    rows = draw(long_table(mistake, id_column, timestamp_column, target))
    model = st.sampled_from(LOCAL_MODELS)
    quantiles = st.lists(st.floats(0.01, 0.99), max_size=9)
    fields: dict[str, Any] = {
        "quantiles": draw(quantiles),
        "context_length": draw(st.one_of(st.none(), st.integers(1, 64))),
    }
    if mistake != "default_names":
        fields |= {"id_column": id_column, "timestamp_column": timestamp_column}
        fields["target_column"] = target
    if mistake == "bad_quantile":
        fields["quantiles"] = [*fields["quantiles"], draw(st.sampled_from([0.0, 1.0, -0.5, 2.0]))]
    if mistake == "bad_freq":
        fields["freq"] = draw(st.sampled_from(["nonsense", "0D", "-1D", "D", "MS", "h"]))
    # The statistical models refuse covariates (400): sent now and then, to check that they do.
    if draw(st.integers(0, 5)) == 0:
        fields["covariates"] = {
            "price": draw(st.sampled_from(["dynamic_numerical", "dynamic_categorical"]))
        }
    if backtest:
        fields["models"] = draw(st.lists(model, min_size=1, max_size=2))
        fields["horizon"] = draw(st.integers(1, 6))
        fields["n_windows"] = draw(st.integers(1, 3))
        fields["step"] = draw(st.one_of(st.none(), st.integers(1, 4)))
    else:
        fields["model"] = draw(model)
        fields["horizon"] = draw(st.integers(1, 48))
        fields["format"] = draw(st.sampled_from(["json", "csv"]))
        # Model selection and calibration, now and then (each runs a backtest per candidate).
        if draw(st.integers(0, 3)) == 0:
            fields["model"] = draw(st.sampled_from(["auto", "ensemble", *LOCAL_MODELS]))
            fields["horizon"] = draw(st.integers(1, 8))
            fields["calibrate"] = draw(st.booleans())
            names = st.sampled_from([*LOCAL_MODELS, "nope", "auto"])
            optional = {
                "candidates": st.lists(names, min_size=1, max_size=3),
                "windows": st.integers(0, 60),
                "k": st.integers(-1, 4),
                "metric": st.sampled_from(["MASE", "WQL", "RMSE"]),
            }
            for name, values in optional.items():
                if draw(st.booleans()):
                    fields[name] = draw(values)
    return fields, rows


def as_file(rows: list[dict], kind: str) -> tuple[str, bytes]:
    frame = pd.DataFrame(rows)
    if kind == "parquet":
        buffer = io.BytesIO()
        frame.astype(str).to_parquet(buffer)
        return "data.parquet", buffer.getvalue()
    if kind == "json":
        return "data.json", json.dumps(rows).encode()
    return "data.csv", frame.to_csv(index=False).encode()


@st.composite
def table_case(
    draw: st.DrawFn, operation: schemathesis.APIOperation, backtest: bool
) -> schemathesis.Case:
    """The request as inline rows, a source path or URL, or a multipart upload."""
    fields, rows = draw(table_fields(backtest))
    how = draw(st.sampled_from(["data", "data", "data", "source", "upload", "upload"]))
    if how == "data":
        return operation.Case(body={**fields, "data": rows}, media_type="application/json")
    if how == "source":
        source = draw(st.sampled_from(SOURCES))
        return operation.Case(body={**fields, "source": source}, media_type="application/json")
    _name, content = as_file(rows, draw(st.sampled_from(["csv", "csv", "parquet", "json"])))
    return operation.Case(
        body={"file": content, "request": json.dumps(fields)},
        media_type="multipart/form-data",
    )


@st.composite
def inference_case(draw: st.DrawFn, operation: schemathesis.APIOperation) -> schemathesis.Case:
    """The earlier product's request: a file in the data directory and its columns' roles."""
    covariate_roles = ["dynamic_numerical", "dynamic_categorical", "static_numerical"]
    definition = {draw(st.sampled_from(["passengers", "passengers", "volume", "nope"])): "target"}
    if draw(st.booleans()):
        definition["volume"] = draw(st.sampled_from([*covariate_roles, "target"]))
    if draw(st.integers(0, 5)) == 0:
        definition = draw(
            st.dictionaries(
                st.sampled_from(["passengers", "date", "y"]),
                st.sampled_from(["target", *covariate_roles]),
                max_size=3,
            )
        )
    dates = st.one_of(st.none(), st.sampled_from(["1955-01-01", "1958-06-01", "2030-01-01"]))
    parameters = {
        "context_len": draw(st.one_of(st.none(), st.integers(1, 200))),
        "horizon_len": draw(st.one_of(st.none(), st.integers(1, 60))),
        "use_covariates": draw(st.booleans()),
        "use_quantiles": draw(st.booleans()),
        "quantile_indices": draw(st.lists(st.integers(0, 9), max_size=10)),
        "context_start_date": draw(
            st.one_of(dates, TIMESTAMP_TEXT) if draw(st.integers(0, 5)) == 0 else dates
        ),
        "context_end_date": draw(dates),
        "freq": draw(st.one_of(st.none(), st.sampled_from([0, 1, 2, "MS", "D", "bogus"]))),
    }
    good = ["sample_data.csv", "uploads/sample_data.csv"]
    source = st.sampled_from([*good, *good, *good, *SOURCES])
    body = {
        "data_source_url_or_path": draw(source),
        "data_definition": definition,
        "parameters": parameters,
    }
    model = draw(st.sampled_from([*LOCAL_MODELS, *LOCAL_MODELS, "timesfm20"]))
    return operation.Case(
        path_parameters={"model": model}, body=body, media_type="application/json"
    )


def fuzz_tables(
    operation: schemathesis.APIOperation, cases: st.SearchStrategy[schemathesis.Case]
) -> Failure:
    @given(case=cases)
    @settings(FIXED, max_examples=TABLE_EXAMPLES)
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=AUTH, checks=CHECKS)

    return first_failure(f"{operation.label} (tables)", run)


def test_forecast_backtest_and_inference_answer_real_looking_tables_as_documented(
    app_schema: schemathesis.BaseSchema,
) -> None:
    forecast = app_schema["/api/v2/forecast"]["POST"]
    backtest = app_schema["/api/v2/backtest"]["POST"]
    inference = app_schema["/api/v1/{model}/inference"]["POST"]
    runs = [
        (forecast, table_case(forecast, backtest=False)),
        (backtest, table_case(backtest, backtest=True)),
        (inference, inference_case(inference)),
    ]
    failures = [f for op, cases in runs if (f := fuzz_tables(op, cases)) is not None]
    assert not failures, "\n\n".join(failures)


# --- Regressions the fuzzer found --------------------------------------------------------------


def test_backtest_of_a_series_its_naive_forecast_predicts_exactly_is_valid_json(
    local: TestClient,
) -> None:
    # MASE divides by the in-sample naive error, zero here: the body carried a bare NaN, which
    # is not JSON. An undefined metric is null.
    data = [{"ds": f"2024-01-{d:02d}", "y": 5.0} for d in range(1, 31)]
    request = {"models": ["seasonal-naive"], "horizon": 2, "n_windows": 2, "data": data}
    response = local.post("/api/v2/backtest", json=request)
    assert response.status_code == 200, response.text
    body = json.loads(response.text, parse_constant=lambda name: pytest.fail(f"{name} in body"))
    (metrics,) = body["metrics"]
    assert metrics["MASE"] is None and metrics["sMAPE"] == 0.0


def test_every_reference_in_the_document_resolves_and_body_routes_document_their_bodies(
    local_gateway: LocalGateway,
) -> None:
    document = TestClient(fuzz_app(local_gateway)).get("/openapi.json").json()
    text = json.dumps(document)
    names = {ref.rsplit("/", 1)[-1] for ref in _refs(document)}
    assert names, text[:200]
    missing = names - set(document["components"]["schemas"])
    assert not missing, f"references to schemas the document lacks: {sorted(missing)}"
    for path in ["/api/v2/forecast", "/api/v2/backtest", "/api/v2/anomalies", "/api/v2/jobs"]:
        content = document["paths"][path]["post"]["requestBody"]["content"]
        assert {"application/json", "multipart/form-data"} <= set(content), path


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []
