"""``sapheneia`` command line: list models, forecast a file, pull weights, show the API key."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from sapheneia.config import ModelConfig, load_model_configs
from sapheneia.errors import SapheneiaError
from sapheneia.tasks import DEFAULT_QUANTILES

DEFAULT_MODELS_DIR = Path("configs/models")


def _configs(models_dir: Path) -> dict[str, ModelConfig]:
    if not models_dir.is_dir():
        raise SapheneiaError(f"no model configs in '{models_dir}'; pass --models-dir")
    return load_model_configs(models_dir)


def _find(configs: dict[str, ModelConfig], name: str) -> ModelConfig:
    for config in configs.values():
        if name == config.id or name in config.aliases:
            return config
    raise SapheneiaError(f"unknown model '{name}'; known: {', '.join(sorted(configs))}")


def cmd_models(args: argparse.Namespace) -> int:
    from sapheneia.models import adapter_class

    rows = []
    for config in _configs(args.models_dir).values():
        caps = adapter_class(config.adapter)(config).capabilities
        rows.append(
            {
                "id": config.id,
                "adapter": config.adapter,
                "weights": config.checkpoint or "-",
                "covariates": "yes" if caps.covariates else "no",
                "max_horizon": caps.max_horizon or "-",
                "licence": caps.licence,
            }
        )
    print(pd.DataFrame(rows).to_string(index=False))
    return 0


def cmd_forecast(args: argparse.Namespace) -> int:
    from sapheneia.data import ColumnRoles, DataLimits, build_tasks, load_table
    from sapheneia.models import create_adapter
    from sapheneia.selection import SELECTORS

    path = Path(args.file).resolve()
    frame = load_table(str(path), DataLimits(data_dir=path.parent, max_bytes=1 << 34))
    roles = ColumnRoles(
        timestamp=args.timestamp_column,
        series_id=args.id_column if args.id_column in frame.columns else None,
        target=args.target_column,
    )
    quantiles = tuple(float(q) for q in args.quantiles.split(",")) if args.quantiles else ()
    tasks = build_tasks(frame, roles, args.horizon, quantiles, freq=args.freq)
    if args.mlflow_uri and args.model not in SELECTORS:
        raise SapheneiaError(
            "--mlflow-uri logs a model selection: use it with --model auto/ensemble"
        )
    if args.model in SELECTORS or args.calibrate:
        table = _chosen(args, frame, roles, tasks)
        return _write(args, table)
    adapter = create_adapter(_find(_configs(args.models_dir), args.model))
    adapter.load()
    outcomes = adapter.forecast(tasks)
    errors = [o for o in outcomes if isinstance(o, SapheneiaError)]
    if errors:
        raise errors[0]
    table = pd.concat([o.to_frame() for o in outcomes if not isinstance(o, SapheneiaError)])
    return _write(args, table)


#: The candidates of ``--model auto`` without ``--candidates``: the statistical models, offline.
CLI_CANDIDATES = "seasonal-naive,auto-ets,auto-theta"


def _chosen(args: argparse.Namespace, frame: pd.DataFrame, roles: Any, tasks: list[Any]) -> Any:
    """``--model auto`` / ``ensemble`` and ``--calibrate`` in process: the server's backtest plan,
    selection and calibration, with the adapters called here."""
    from sapheneia import calibration, selection
    from sapheneia.data.table import SERIES, TARGET, prepare
    from sapheneia.evaluation import plan_backtest
    from sapheneia.models import create_adapter

    configs = _configs(args.models_dir)
    selecting = args.model in selection.SELECTORS
    names = (args.candidates or CLI_CANDIDATES).split(",") if selecting else [args.model]
    table = prepare(frame, roles)
    shortest = int(table[table[TARGET].notna()].groupby(SERIES).size().min())
    if args.calibrate:
        step = calibration.window_step(args.horizon, shortest, args.windows)
        default = calibration.DEFAULT_WINDOWS
    else:
        step, default = args.horizon, selection.DEFAULT_WINDOWS
    windows = selection.check_windows(shortest, args.horizon, step, args.windows, default)
    plan = plan_backtest(
        frame,
        roles,
        horizon=args.horizon,
        n_windows=windows,
        step=step,
        quantiles=tasks[0].quantiles,
        freq=args.freq,
    )
    results, final = {}, {}
    for name in names:
        adapter = create_adapter(_find(configs, name))
        adapter.load()
        results[adapter.name] = [_forecast(adapter, window) for window in plan.tasks]
        final[adapter.name] = _forecast(adapter, tasks)
    chosen = None
    if selecting:
        metric = selection.default_metric(tasks[0].quantiles, args.metric)
        chosen = selection.select(plan, results, final, metric=metric, mode=args.model, k=args.k)
        outcomes, by_window, models = chosen.final, chosen.windows, chosen.models
    else:
        (model,) = results
        outcomes, by_window, models = final[model], results[model], [model] * len(tasks)
    if args.calibrate:
        outcomes = calibration.calibrate(plan, by_window, outcomes).final
    if chosen is not None and args.mlflow_uri:
        from sapheneia.tracking import TrackingTarget, log_selection

        target = TrackingTarget(uri=args.mlflow_uri, experiment=args.experiment)
        run_id = log_selection(
            target,
            plan,
            chosen,
            mode=args.model,
            metric=metric,
            k=args.k,
            quantiles=tasks[0].quantiles,
            answered=outcomes,
        )
        print(f"MLflow run {run_id} in experiment '{args.experiment}'", file=sys.stderr)
    return pd.concat([o.to_frame(m) for o, m in zip(outcomes, models, strict=True)])


def _forecast(adapter: Any, tasks: list[Any]) -> list[Any]:
    outcomes = adapter.forecast(tasks)
    errors = [o for o in outcomes if isinstance(o, SapheneiaError)]
    if errors:
        raise errors[0]
    return list(outcomes)


def _write(args: argparse.Namespace, table: pd.DataFrame) -> int:
    if args.output:
        table.to_csv(args.output, index=False)
        print(f"wrote {len(table)} rows to {args.output}")
    else:
        with pd.option_context("display.max_rows", 500, "display.width", 160):
            print(table.round(3).to_string(index=False))
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    # Ray is imported here only: `import sapheneia` (and every other command) stays Ray-free.
    import os

    import ray
    from tqdm import tqdm

    from sapheneia.jobs import Engine, JobSpec, Progress, run_pipeline
    from sapheneia.settings import get_settings

    settings = get_settings()
    quantiles = [float(q) for q in args.quantiles.split(",")] if args.quantiles else []
    spec = JobSpec(
        models=[_find(_configs(args.models_dir), args.model)],
        horizon=args.horizon,
        quantiles=quantiles,
        freq=args.freq,
        id_column=args.id_column,
        timestamp_column=args.timestamp_column,
        target_column=args.target_column,
        engine=Engine(
            actors=args.actors or settings.jobs_actors,
            actor_cpus=settings.jobs_actor_cpus,
            actor_gpus=settings.jobs_actor_gpus,
            cpus=args.cpus or settings.jobs_cpus,
            series_per_bucket=settings.jobs_series_per_bucket,
        ),
    )
    source = args.input if "://" in args.input else str(Path(args.input).resolve())
    if args.address:
        ray.init(address=args.address, configure_logging=False)
    else:
        # Loopback only: a local run opens nothing to the network.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        ray.init(
            address="local",
            _node_ip_address="127.0.0.1",
            include_dashboard=False,
            configure_logging=False,
        )
    bar = tqdm(unit="series", desc=f"{spec.models[0].id} -> {args.out}")

    def show(progress: Progress) -> None:
        bar.total = progress.series_total
        bar.n = progress.series_done
        bar.refresh()

    try:
        progress = run_pipeline(
            spec,
            source,
            args.out,
            on_progress=show,
            s3_endpoint=settings.jobs_s3_endpoint or None,
        )
    finally:
        bar.close()
        ray.shutdown()
    print(
        f"{progress.series_done:,} series ({progress.series_failed:,} failed), "
        f"{progress.rows_written:,} rows in {args.out}"
    )
    return 0 if progress.series_failed < max(progress.series_total, 1) else 2


def cmd_pull(args: argparse.Namespace) -> int:
    from sapheneia.models.checkpoints import pull, store_path
    from sapheneia.settings import get_settings

    config = _find(_configs(args.models_dir), args.model)
    if not config.checkpoint:
        print(f"'{config.id}' has no weights to download")
        return 0
    model_dir = get_settings().model_dir
    destination = (
        Path(args.to) if args.to else store_path(model_dir, config.checkpoint, config.revision)
    )
    path = pull(config.checkpoint, destination, config.revision)
    print(f"weights of '{config.id}' are in {path}")
    if args.to:
        print(f"serve them with `checkpoint: {path}` in the config of '{config.id}'")
    else:
        print(f"the server reads them from there (SAPHENEIA_MODEL_DIR={model_dir})")
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from sapheneia.keys import KeyConfigError, load_keys
    from sapheneia.settings import Settings

    try:
        keys = load_keys(Settings())
    except KeyConfigError as error:
        # An operator's error at start: the message names the file or variable and the fix.
        print(f"error: {error}", file=sys.stderr)
        return 2
    admin, forecast_only = len(keys.admin), len(keys.forecast) - len(keys.admin)
    print(f"{forecast_only} forecast and {admin} admin API key(s)")
    if keys.key_file is not None:
        print(f"API key file: {keys.key_file.resolve()} (send 'Authorization: Bearer <key>')")
    return 0


def cmd_kube_manifest(args: argparse.Namespace) -> int:
    from sapheneia.kuberay import ClusterSpec, write_manifests

    spec = ClusterSpec(
        name=args.name,
        image=args.image or ClusterSpec.image,
        gpu_image=args.gpu_image,
        gpu_models=tuple(args.gpu_model),
        gpu_fraction=args.gpu_fraction,
    )
    written = write_manifests(args.serve_config, args.out_dir, spec, args.models_dir)
    for name in written:
        print(f"wrote {args.out_dir / name}")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="sapheneia", description=__doc__)
    root.add_argument("--models-dir", type=Path, default=DEFAULT_MODELS_DIR)
    commands = root.add_subparsers(dest="command", required=True)

    commands.add_parser("models", help="list configured models").set_defaults(run=cmd_models)

    forecast = commands.add_parser("forecast", help="forecast a CSV/Parquet file in-process")
    forecast.add_argument("file")
    forecast.add_argument("--model", "-m", default="auto-ets")
    forecast.add_argument("--horizon", "-H", type=int, default=12)
    forecast.add_argument("--quantiles", default="0.1,0.9", help="comma-separated levels")
    forecast.add_argument("--freq", default=None, help="pandas alias; inferred when omitted")
    forecast.add_argument("--id-column", default="unique_id")
    forecast.add_argument("--timestamp-column", default="ds")
    forecast.add_argument("--target-column", default="y")
    forecast.add_argument("--output", "-o", help="write CSV here instead of printing")
    forecast.add_argument(
        "--candidates", default=None, help=f"with --model auto/ensemble (default {CLI_CANDIDATES})"
    )
    forecast.add_argument("--windows", type=int, default=None, help="backtest windows")
    forecast.add_argument("--metric", choices=["MASE", "WQL"], default=None)
    forecast.add_argument("--k", type=int, default=3, help="models an ensemble combines")
    forecast.add_argument("--calibrate", action="store_true", help="conformalise the quantiles")
    forecast.add_argument(
        "--mlflow-uri",
        default=None,
        help="with --model auto/ensemble: log the selection as an MLflow run there "
        "(the 'mlflow' extra)",
    )
    forecast.add_argument("--experiment", default="sapheneia", help="MLflow experiment name")
    forecast.set_defaults(run=cmd_forecast)

    batch = commands.add_parser(
        "batch", help="forecast a large Parquet/CSV file or folder with Ray Data (resumes)"
    )
    batch.add_argument("input", metavar="IN", help="Parquet or CSV file, folder of Parquet, s3://")
    batch.add_argument("--model", "-m", required=True)
    batch.add_argument("--horizon", "-H", type=int, required=True)
    batch.add_argument("--out", "-o", required=True, help="output folder (or s3:// prefix)")
    batch.add_argument(
        "--quantiles", default=",".join(map(str, DEFAULT_QUANTILES)), help="comma-separated levels"
    )
    batch.add_argument("--freq", default=None, help="pandas alias; inferred when omitted")
    batch.add_argument("--id-column", default="unique_id")
    batch.add_argument("--timestamp-column", default="ds")
    batch.add_argument("--target-column", default="y")
    batch.add_argument("--address", default=None, help="Ray cluster (default: a local one)")
    batch.add_argument(
        "--actors", type=int, default=None, help="adapter actors (SAPHENEIA_JOBS_ACTORS)"
    )
    batch.add_argument("--cpus", type=float, default=None, help="CPU budget (SAPHENEIA_JOBS_CPUS)")
    batch.set_defaults(run=cmd_batch)

    pull = commands.add_parser("pull", help="download a model's weights for offline use")
    pull.add_argument("model")
    pull.add_argument(
        "--to", help="directory (default: the weights store, SAPHENEIA_MODEL_DIR or ./models)"
    )
    pull.set_defaults(run=cmd_pull)

    commands.add_parser("keys", help="show where the API key is").set_defaults(run=cmd_keys)

    kube = commands.add_parser(
        "kube-manifest", help="write the KubeRay RayService manifests from serve_config.yaml"
    )
    kube.add_argument("--serve-config", type=Path, default=Path("serve_config.yaml"))
    kube.add_argument(
        "--out-dir",
        type=Path,
        default=Path("deploy/kubernetes"),
        help="rayservice.yaml, models.yaml",
    )
    kube.add_argument("--name", default="sapheneia", help="RayService name (and its Services')")
    kube.add_argument(
        "--image", default=None, help="image of every pod (default sapheneia:VERSION)"
    )
    kube.add_argument("--gpu-image", default=None, help="image of GPU pods (a CUDA torch build)")
    kube.add_argument(
        "--gpu-model",
        action="append",
        default=[],
        metavar="ID",
        help="run this model on the GPU group (repeatable)",
    )
    kube.add_argument(
        "--gpu-fraction", type=float, default=0.25, help="num_gpus of each --gpu-model replica"
    )
    kube.set_defaults(run=cmd_kube_manifest)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.run(args))
    except SapheneiaError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
