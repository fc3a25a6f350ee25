"""``POST /api/v2/anomalies`` and ``history: true``, in process and on the real Serve instance,
against references computed here: seasonal-naive's one-step interval by hand, and for any model a
plain forecast request on the history cut at each point."""

from __future__ import annotations

import io

import httpx
import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from tests.deployments.conftest import assert_error
from tests.sapheneia.anomaly_cases import monthly, two_rounds_reference, walk

SEASON = 12
LENGTH = 96
SPIKE_AT = LENGTH - 5


def seasonal(seed: int, spike: bool) -> np.ndarray:
    """Monthly values: a yearly cycle plus noise; one point 5 standard deviations up if ``spike``."""
    rng = np.random.default_rng(seed)
    y = 50 + 8 * np.sin(np.arange(LENGTH) * 2 * np.pi / SEASON) + rng.normal(0, 0.5, LENGTH)
    if spike:
        y[SPIKE_AT] += 5 * y.std()
    return y


def rows(values: dict[str, np.ndarray]) -> list[dict[str, object]]:
    stamps = pd.date_range("2015-01-01", periods=LENGTH, freq="MS")
    return [
        {"unique_id": uid, "ds": stamp.date().isoformat(), "y": float(v)}
        for uid, y in values.items()
        for stamp, v in zip(stamps, y, strict=True)
    ]


def seasonal_naive_one_step(y: np.ndarray, level: float, points: range) -> np.ndarray:
    """statsforecast's SeasonalNaive one step ahead, written out: the value a season back, and
    the mean ± z·σ interval, σ from the in-sample seasonal differences (season 1 under two
    seasons, as the adapter does). ``(len(points), 3)``: mean, lo, hi."""
    z = norm.ppf(0.5 + level / 200)
    out = []
    for k in points:
        season = SEASON if k >= 2 * SEASON else 1
        residuals = y[season:k] - y[: k - season]
        sigma = np.sqrt(np.sum(residuals**2) / (k - season))
        mean = y[k - season]
        out.append((mean, mean - z * sigma, mean + z * sigma))
    return np.array(out)


def seasonal_naive_reference(y: np.ndarray, level: float, last_n: int) -> pd.DataFrame:
    """The anomalies route's answer for ``y``, by the rule the README states: a first round of
    one-step forecasts; each flagged point that does not follow a flagged one replaced by its
    one-step mean in the history of the later points, which are forecast again."""
    points = range(len(y) - last_n, len(y))
    tested = y[len(y) - last_n :]
    first = seasonal_naive_one_step(y, level, points)
    flagged = (tested < first[:, 1]) | (tested > first[:, 2])
    replaced = np.flatnonzero(flagged & ~np.concatenate([[False], flagged[:-1]]))
    final = first.copy()
    if len(replaced):
        cleaned = y.copy()
        cleaned[points[0] + replaced] = first[replaced, 0]
        final[replaced[0] + 1 :] = seasonal_naive_one_step(
            cleaned, level, points[replaced[0] + 1 :]
        )
    mean, lo, hi = final.T
    outside = np.maximum(np.maximum(lo - tested, tested - hi), 0.0)
    return pd.DataFrame(
        {
            "y": tested,
            "mean": mean,
            "lo": lo,
            "hi": hi,
            "anomaly": outside > 0,
            "score": outside / (hi - lo),
        }
    )


@pytest.fixture(params=["local", "client"])
def api(request: pytest.FixtureRequest) -> httpx.Client:
    """The in-process app, then the real Serve instance."""
    return request.getfixturevalue(request.param)


def test_seasonal_naive_flags_the_spike_and_only_it_as_the_reference_does(
    api: httpx.Client,
) -> None:
    values = {"calm": seasonal(1, spike=False), "spiky": seasonal(2, spike=True)}
    last_n = 40
    response = api.post(
        "/api/v2/anomalies",
        json={"model": "seasonal-naive", "last_n": last_n, "data": rows(values)},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "seasonal-naive"
    points = pd.DataFrame(body["anomalies"])
    assert list(points.columns) == ["unique_id", "ds", "y", "mean", "lo", "hi", "anomaly", "score"]
    for uid, y in values.items():
        got = points[points["unique_id"] == uid].reset_index(drop=True)
        expected = seasonal_naive_reference(y, 99, last_n)
        assert got["ds"].tolist() == [
            stamp.isoformat()
            for stamp in pd.date_range("2015-01-01", periods=LENGTH, freq="MS")[-last_n:]
        ]
        for column in ("y", "mean", "lo", "hi", "score"):
            np.testing.assert_allclose(got[column], expected[column], rtol=1e-6, err_msg=column)
        assert got["anomaly"].tolist() == expected["anomaly"].tolist()
    flagged = points[points["anomaly"]]
    spike_ds = pd.date_range("2015-01-01", periods=LENGTH, freq="MS")[SPIKE_AT].isoformat()
    assert flagged[["unique_id", "ds"]].values.tolist() == [["spiky", spike_ds]]
    assert flagged["score"].iloc[0] > 1
    assert (points.loc[~points["anomaly"], "score"] == 0).all()
    metadata = body["metadata"]
    assert metadata["quantiles"] == [0.005, 0.995]
    assert metadata["points_per_series"] == last_n and metadata["series_count"] == 2
    assert metadata["anomalies"] == 1
    # The spike is replaced in the history of the 4 months after it, which are forecast again.
    assert metadata["replaced"] == 1 and metadata["forecast_again"] == 4


def test_a_foundation_model_s_interval_is_its_forecast_on_each_cut(client: httpx.Client) -> None:
    y = seasonal(3, spike=True)
    last_n, level = 6, 90
    response = client.post(
        "/api/v2/anomalies",
        json={"model": "chronos-bolt", "level": level, "last_n": last_n, "data": rows({"s": y})},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    points = pd.DataFrame(body["anomalies"])
    data = rows({"s": y})

    def alone(history: list[dict[str, object]]) -> tuple[float, float, float, str]:
        """A plain forecast request on ``history``: mean, interval edges, timestamp."""
        answer = client.post(
            "/api/v2/forecast",
            json={
                "model": "chronos-bolt",
                "horizon": 1,
                "quantiles": [0.05, 0.95],
                "data": history,
            },
        )
        assert answer.status_code == 200, answer.text
        (row,) = answer.json()["forecast"]
        # Random weights can cross the edges: the interval is between them, whichever is lower.
        lo, hi = sorted([row["q-0.05"], row["q-0.95"]])
        return row["mean"], lo, hi, row["ds"]

    cuts = range(LENGTH - last_n, LENGTH)
    first = [alone(data[:cut]) for cut in cuts]
    flagged = [not lo <= y[cut] <= hi for cut, (_, lo, hi, _) in zip(cuts, first, strict=True)]
    # The second round, by the README's rule: a flag that does not follow a flag is replaced by
    # its one-step mean in the history of the later points, which are forecast again.
    replaced = [f and not (j and flagged[j - 1]) for j, f in enumerate(flagged)]
    cleaned = [dict(row) for row in data]
    expected = list(first)
    for j, cut in enumerate(cuts):
        if any(replaced[:j]):
            expected[j] = alone(cleaned[:cut])
        if replaced[j]:
            cleaned[cut]["y"] = first[j][0]
    for (index, point), (mean, lo, hi, ds) in zip(points.iterrows(), expected, strict=True):
        cut = cuts[int(str(index))]
        assert point["ds"] == ds
        np.testing.assert_allclose(
            [point["mean"], point["lo"], point["hi"]], [mean, lo, hi], rtol=1e-5, atol=1e-6
        )
        outside = max(lo - y[cut], y[cut] - hi, 0.0)
        assert point["anomaly"] == (outside > 0)
        np.testing.assert_allclose(point["score"], outside / (hi - lo), rtol=1e-4)
    metadata = body["metadata"]
    assert metadata["replaced"] == sum(replaced)
    assert metadata["forecast_again"] == (last_n - 1 - replaced.index(True) if any(replaced) else 0)
    # Every cut was sent at once: the deployment batched them together.
    assert metadata["largest_batch"] > 1


def test_auto_ets_flags_a_spike_and_not_the_month_after_it(api: httpx.Client) -> None:
    """A wandering series, where AutoETS follows the level closely: without the second round
    the month after the spike falls outside the interval too (the reference shows it)."""
    y = walk(0)
    y[-6] += 5 * np.std(np.diff(y[:-6]), ddof=1)
    first_round, mean, lo, hi, flags = two_rounds_reference(y, 10, 99)
    assert np.flatnonzero(first_round).tolist() == [4, 5]
    data = monthly(y).assign(ds=lambda f: f["ds"].dt.strftime("%Y-%m-%d")).to_dict("records")
    response = api.post("/api/v2/anomalies", json={"model": "auto-ets", "last_n": 10, "data": data})
    assert response.status_code == 200, response.text
    body = response.json()
    points = pd.DataFrame(body["anomalies"])
    assert points.loc[points["anomaly"], "ds"].tolist() == [data[-6]["ds"] + "T00:00:00"]
    np.testing.assert_allclose(points[["mean", "lo", "hi"]].to_numpy().T, [mean, lo, hi], rtol=1e-6)
    assert points["anomaly"].tolist() == flags.tolist()
    assert body["metadata"]["replaced"] == 1 and body["metadata"]["forecast_again"] == 5


def test_history_rows_are_the_forecasts_on_each_history_cut(api: httpx.Client) -> None:
    y = seasonal(4, spike=False)[:48]
    data = [r for r in rows({"h": seasonal(4, spike=False)}) if str(r["ds"]) < "2019-01-01"]
    assert len(data) == len(y)
    response = api.post(
        "/api/v2/forecast",
        json={"model": "auto-ets", "horizon": 2, "history": True, "data": data},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["forecast"]) == 2
    history = pd.DataFrame(body["history"])
    # Every point after the shortest context the model and the server accept.
    assert len(history) == len(y) - 7
    assert list(history.columns) == [
        "unique_id",
        "ds",
        "y",
        "mean",
        "median",
        "q-0.1",
        "q-0.5",
        "q-0.9",
    ]
    np.testing.assert_allclose(history["y"], y[7:])
    for cut in (7, 30, len(y) - 1):
        alone = api.post(
            "/api/v2/forecast", json={"model": "auto-ets", "horizon": 1, "data": data[:cut]}
        )
        assert alone.status_code == 200, alone.text
        (row,) = alone.json()["forecast"]
        fitted = history.iloc[cut - 7]
        assert fitted["ds"] == row["ds"]
        for column in ("mean", "q-0.1", "q-0.9"):
            np.testing.assert_allclose(fitted[column], row[column], rtol=1e-6, err_msg=column)
    # Without the flag the answer has no history.
    plain = api.post("/api/v2/forecast", json={"model": "auto-ets", "horizon": 2, "data": data})
    assert "history" not in plain.json()


def test_history_in_csv_is_marked_by_kind_and_an_upload_answers_as_json_does(
    local: httpx.Client,
) -> None:
    data = rows({"u": seasonal(5, spike=True)})
    content = pd.DataFrame(data).to_csv(index=False).encode()
    response = local.post(
        "/api/v2/forecast",
        files={"file": ("u.csv", content, "text/csv")},
        data={
            "request": '{"model": "seasonal-naive", "horizon": 3, "history": true, "format": "csv"}'
        },
    )
    assert response.status_code == 200, response.text
    table = pd.read_csv(io.StringIO(response.text))
    assert table["kind"].value_counts().to_dict() == {"history": LENGTH - 3, "forecast": 3}
    assert table["kind"].tolist()[-3:] == ["forecast"] * 3
    as_json = local.post(
        "/api/v2/anomalies", json={"model": "seasonal-naive", "last_n": 10, "data": data}
    )
    uploaded = local.post(
        "/api/v2/anomalies",
        files={"file": ("u.csv", content, "text/csv")},
        data={"request": '{"model": "seasonal-naive", "last_n": 10}'},
    )
    assert uploaded.status_code == 200, uploaded.text
    # The same points; the values as the CSV's text rounds them.
    pd.testing.assert_frame_equal(
        pd.DataFrame(uploaded.json()["anomalies"]), pd.DataFrame(as_json.json()["anomalies"])
    )


def test_the_default_is_bounded_and_a_larger_last_n_is_refused(local: httpx.Client) -> None:
    # 30 series of 96 points: the default tests the latest 2000 // 30 = 66 of each.
    data = rows({f"s{i}": seasonal(i, spike=False) for i in range(30)})
    response = local.post("/api/v2/anomalies", json={"model": "seasonal-naive", "data": data})
    assert response.status_code == 200, response.text
    assert response.json()["metadata"]["points_per_series"] == 66
    over = local.post(
        "/api/v2/anomalies", json={"model": "seasonal-naive", "last_n": 70, "data": data}
    )
    error = assert_error(over, 413, "limit_exceeded")
    assert "2,100 points (70 per series × 30 series), over the limit of 2,000" in error["message"]
    assert "SAPHENEIA_MAX_ONE_STEP_POINTS" in error["message"]


@pytest.mark.parametrize(
    ("fields", "status", "named"),
    [
        ({"level": 100}, 400, "level"),
        ({"level": 0}, 400, "level"),
        ({"last_n": 0}, 400, "last_n"),
        ({"last_n": LENGTH}, 400, "last_n is 96"),
        ({"quantiles": [0.1, 0.9]}, 400, "quantiles"),
        ({"model": "nope"}, 404, "unknown model 'nope'"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(
    local: httpx.Client, fields: dict[str, object], status: int, named: str
) -> None:
    body = {"model": "seasonal-naive", "data": rows({"a": seasonal(6, spike=False)}), **fields}
    error = assert_error(local.post("/api/v2/anomalies", json=body), status)
    assert named in error["message"]


def test_a_history_too_short_for_the_model_names_the_series(local: httpx.Client) -> None:
    data = rows({"a": seasonal(7, spike=False)})[:7]
    error = assert_error(
        local.post("/api/v2/anomalies", json={"model": "auto-ets", "data": data}),
        422,
        "series_too_short",
    )
    assert error["message"].startswith("series 'a' has 7 observations; testing a point needs")
    # auto-ets fits from 7 points: the history of a forecast with 7 points is refused the same way.
    error = assert_error(
        local.post(
            "/api/v2/forecast",
            json={"model": "auto-ets", "horizon": 1, "history": True, "data": data},
        ),
        422,
        "series_too_short",
    )
    assert "send at least 8" in error["message"]
