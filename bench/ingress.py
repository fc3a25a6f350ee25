"""Target 1: the ingress's CPU per series, step by step in process and in all for the served
ingress replica, for requests of 1, 32 and 1,000 series of 512 points (horizon 128).

In process, each step the ingress runs for a request is timed on the thread's CPU clock (median
of repeats): reading the body, the table, the tasks, the hop to the model replica and back
(serialized as Ray serializes a handle call's argument and answer), and the answer. Served, the
ingress replica's own process CPU (psutil) over N sequential requests, less its idle rate, is
divided by the series answered.

    python -m bench.ingress [--quick] [--only steps|served]

The script reads the code it runs with: from a copy of an earlier commit (``git archive``), the
same command measures the code before a change (steps that did not exist then are left out).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pyarrow as pa

from bench.common import API_KEY, HORIZON, QUANTILES, series_rows, table
from deployments.schemas import ForecastRequest
from sapheneia.config import ModelConfig
from sapheneia.data import ColumnRoles, DataLimits, build_tasks, load_table
from sapheneia.models import create_adapter
from sapheneia.tasks import ForecastResult

SIZES = (1, 32, 1000)
LENGTH = 512
REQUEST_HEADER = "X-Sapheneia-Request"
MAX_BYTES = 64 * 1024 * 1024  # 1,000 series of 512 points are 31 MiB as JSON rows
FIELDS = {"model": "seasonal-naive", "horizon": HORIZON, "quantiles": QUANTILES}


def json_body(n_series: int) -> bytes:
    return json.dumps({**FIELDS, "data": series_rows(n_series, LENGTH)}).encode()


def arrow_body(n_series: int) -> bytes:
    """The same rows as an Arrow IPC stream (ids as text, timestamps typed)."""
    frame = pd.DataFrame(series_rows(n_series, LENGTH))
    frame["ds"] = pd.to_datetime(frame["ds"])
    data = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, data.schema) as writer:
        writer.write_table(data)
    return bytes(sink.getvalue().to_pybytes())


def cpu_ms(call: Callable[[], object], repeats: int) -> float:
    """Median thread CPU milliseconds of ``call`` after one warm-up."""
    call()
    times = []
    for _ in range(repeats):
        started = time.thread_time()
        call()
        times.append(time.thread_time() - started)
    return statistics.median(times) * 1e3


def serialized(value: object) -> tuple[bytes, list[pickle.PickleBuffer]]:
    """As Ray serializes a call's argument: cloudpickle, protocol 5, buffers out of band."""
    from ray import cloudpickle

    buffers: list[pickle.PickleBuffer] = []
    return cloudpickle.dumps(value, protocol=5, buffer_callback=buffers.append), buffers


def step_rows(n_series: int, kind: str, repeats: int) -> list[list[object]]:
    """Median CPU ms of each ingress step for one request of ``n_series``, and per series."""
    limits = DataLimits(data_dir=Path(tempfile.gettempdir()), max_bytes=MAX_BYTES)
    adapter = create_adapter(ModelConfig(id="seasonal-naive", adapter="statsforecast"))
    adapter.load()
    steps: dict[str, Callable[[], object]] = {}
    if kind == "json":
        raw = json_body(n_series)
        parse = _json_parser()
        body = parse(raw)
        rows = body.data or []
        steps["read JSON body"] = lambda: parse(raw)
        steps["rows -> table"] = lambda: load_table(rows, limits)
        frame = load_table(rows, limits)
    else:
        raw = arrow_body(n_series)
        body = ForecastRequest.model_validate({**FIELDS, "source": "upload"})
        steps["Arrow body -> table"] = lambda: load_table(raw, limits, filename="body.arrow")
        frame = load_table(raw, limits, filename="body.arrow")
    roles = ColumnRoles()
    steps["table -> tasks"] = lambda: build_tasks(frame, roles, HORIZON, QUANTILES, group="g")
    tasks = build_tasks(frame, roles, HORIZON, QUANTILES, group="g")
    results: list[Any] = adapter.forecast(tasks)
    for result in results:
        result.metadata.update(batch_size=n_series, replica="r", model_seconds=0.1)
    blocks = _blocks()
    if blocks is not None:
        steps["tasks -> model (pack, serialize)"] = lambda: serialized(
            blocks.TaskBlock.pack(tasks) or tasks
        )
        answer = serialized(blocks.ResultBlock.pack(results) or results)

        def back() -> object:
            outcome = pickle.loads(answer[0], buffers=answer[1])
            return outcome.results() if isinstance(outcome, blocks.ResultBlock) else outcome

    else:
        steps["tasks -> model (pack, serialize)"] = lambda: serialized(tasks)
        answer = serialized(results)

        def back() -> object:
            return pickle.loads(answer[0], buffers=answer[1])

    steps["results <- model (deserialize)"] = back
    done = [r for r in results if isinstance(r, ForecastResult)]
    metadata = {"series_count": len(done), "batch_sizes": [n_series] * len(done)}
    steps.update(_answer_steps(done, body, metadata))
    out: list[list[object]] = []
    common, answers = 0.0, {}
    for name, call in steps.items():
        ms = cpu_ms(call, repeats)
        if name.startswith("answer"):
            answers[name.removeprefix("answer ")] = ms
        else:
            common += ms
        out.append([n_series, kind, name, ms, ms / n_series])
    for shape, ms in answers.items():
        total = common + ms
        out.append([n_series, kind, f"all steps, answer {shape}", total, total / n_series])
    return out


def _answer_steps(
    done: list[ForecastResult], body: ForecastRequest, metadata: dict[str, Any]
) -> dict[str, Callable[[], object]]:
    """The answer's writers: JSON and Arrow, or JSON alone in the code before ForecastAnswer."""
    try:
        from deployments.routes_v2 import ForecastAnswer
    except ImportError:  # the code before one answer class (JSON through json.dumps)
        from deployments.routes_v2 import forecast_json  # type: ignore[attr-defined]

        return {"answer (JSON)": lambda: forecast_json(done, body, "seasonal-naive", metadata)}
    shaped = ForecastAnswer(done, body, "seasonal-naive", metadata)
    return {"answer (JSON)": shaped.as_json, "answer (Arrow)": shaped.as_arrow}


def _json_parser() -> Callable[[bytes], ForecastRequest]:
    try:
        from deployments.parsing import parse_table_body

        return lambda raw: parse_table_body(ForecastRequest, raw)
    except ImportError:  # the code before the orjson path
        from deployments.schemas import parse_body

        return lambda raw: parse_body(ForecastRequest, raw)


def _blocks() -> Any:
    try:
        import sapheneia.blocks as blocks

        return blocks
    except ImportError:  # the code before blocks
        return None


def steps_section(quick: bool) -> str:
    repeats = 5 if quick else 15
    rows: list[list[object]] = []
    for n_series in SIZES:
        kinds = ["json", "arrow"] if _blocks() is not None else ["json"]
        for kind in kinds:
            rows += step_rows(n_series, kind, max(3, repeats // (1 + n_series // 100)))
            print(rows[-1], flush=True)
    return "\n".join(
        [
            "### Ingress steps in process (thread CPU, median)",
            "",
            table(["series/request", "body", "step", "CPU ms", "CPU ms / series"], rows),
        ]
    )


# --- the served ingress ------------------------------------------------------------------------


def ingress_pid() -> int:
    """The ingress replica's process: among this process's descendants (the local Ray instance's
    workers), the one whose title Ray set to the ingress replica's."""
    import psutil

    for _ in range(60):
        for child in psutil.Process().children(recursive=True):
            try:
                if "ServeReplica:api:ingress" in " ".join(child.cmdline()):
                    return int(child.pid)
            except psutil.Error:
                continue
        time.sleep(0.5)
    raise RuntimeError("no ingress replica among this process's descendants")


def process_cpu(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def served_rows(url: str, pid: int, quick: bool) -> list[list[object]]:
    """Ingress process CPU per request and per series, sequential requests, idle rate removed."""
    idle_cpu = process_cpu(pid)
    time.sleep(3.0)
    idle_rate = (process_cpu(pid) - idle_cpu) / 3.0
    rows = []
    headers = {"Authorization": f"Bearer {API_KEY}"}
    cases: list[tuple[int, str, bytes, dict[str, str]]] = []
    for n_series in SIZES:
        json_type = {"Content-Type": "application/json"}
        cases.append((n_series, "json -> json", json_body(n_series), json_type))
        if _blocks() is not None:
            arrow = {
                "Content-Type": "application/vnd.apache.arrow.stream",
                REQUEST_HEADER: json.dumps(FIELDS),
            }
            cases.append((n_series, "arrow -> json", arrow_body(n_series), arrow))
            answer_arrow = {**arrow, REQUEST_HEADER: json.dumps({**FIELDS, "format": "arrow"})}
            cases.append((n_series, "arrow -> arrow", arrow_body(n_series), answer_arrow))
    with httpx.Client(headers=headers, timeout=600) as client:
        # The floor: a route that does nothing (GET /), the same way through proxy and replica.
        count = 30 if quick else 100
        for _ in range(5):
            client.get(f"{url}/").raise_for_status()
        before, started = process_cpu(pid), time.perf_counter()
        for _ in range(count):
            client.get(f"{url}/").raise_for_status()
        seconds = time.perf_counter() - started
        floor = (process_cpu(pid) - before - idle_rate * seconds) / count * 1e3
        rows.append(["GET / (no work)", "-", count, floor, "-"])
        print(rows[-1], flush=True)
        for n_series, kind, body, extra in cases:
            count = {1: 100, 32: 30, 1000: 8}[n_series] // (3 if quick else 1)
            for _ in range(2):  # warm-up
                client.post(
                    f"{url}/api/v2/forecast", content=body, headers=extra
                ).raise_for_status()
            before, started = process_cpu(pid), time.perf_counter()
            for _ in range(count):
                answer = client.post(f"{url}/api/v2/forecast", content=body, headers=extra)
                answer.raise_for_status()
            seconds = time.perf_counter() - started
            cpu = process_cpu(pid) - before - idle_rate * seconds
            per_request = cpu / count * 1e3
            rows.append([n_series, kind, count, per_request, per_request / n_series])
            print(rows[-1], flush=True)
    return rows


def profile_section(url: str, pid: int, n_series: int, kind: str, seconds: float) -> str:
    """py-spy's samples of the ingress replica while it answers back-to-back requests: the
    functions holding the most samples, on their own and with what they call."""
    import subprocess
    import sys
    from collections import Counter

    spy = Path(sys.executable).with_name("py-spy")
    output = Path(tempfile.mkdtemp()) / "profile.txt"
    body = json_body(n_series) if kind == "json" else arrow_body(n_series)
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    if kind == "arrow":
        headers |= {
            "Content-Type": "application/vnd.apache.arrow.stream",
            REQUEST_HEADER: json.dumps(FIELDS),
        }
    # --gil: only the thread holding the GIL, so that threads waiting on locks and sockets (Ray's
    # router and event loops, idle pool workers) do not crowd out where Python spends its time.
    command = [str(spy), "record", "--pid", str(pid), "--rate", "250", "--format", "raw", "--gil"]
    recorder = subprocess.Popen(
        [*command, "--output", str(output), "--duration", str(int(seconds))],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with httpx.Client(headers=headers, timeout=600) as client:
        while recorder.poll() is None:
            client.post(f"{url}/api/v2/forecast", content=body).raise_for_status()
    own: Counter[str] = Counter()
    within: Counter[str] = Counter()
    total = 0
    for line in output.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [_frame(f) for f in stack.split(";")]
        total += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            within[frame] += int(count)
    ours = [(f, n) for f, n in within.most_common() if "(deployments/" in f or "(sapheneia/" in f]
    rows = [["own", f, 100 * n / total] for f, n in own.most_common(12)]
    rows += [["with callees", f, 100 * n / total] for f, n in ours[:12]]
    return "\n".join(
        [
            f"### py-spy: the ingress replica answering {n_series}-series {kind} requests",
            "",
            f"{total} samples at 250 Hz over {seconds:.0f} s of the thread holding the GIL (py-spy "
            "--gil; Ray's C++ threads are not sampled); the share of samples in each function on "
            "its own, and in this project's functions with what they call.",
            "",
            table(["", "function (file)", "% of samples"], rows),
        ]
    )


def _frame(text: str) -> str:
    """``function (path/file.py:line)`` as ``function (package/file.py)``."""
    name, _, where = text.partition(" (")
    parts = Path(where.split(":")[0]).parts
    ours = [i for i, part in enumerate(parts) if part in ("sapheneia", "deployments")]
    short = "/".join(parts[ours[-1] :] if ours else parts[-2:])
    return f"{name} ({short})"


def served_section(quick: bool, profile: tuple[int, str] | None = None) -> str:
    from bench.common import ServeInstance

    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        (root / "data").mkdir()
        os.environ["SAPHENEIA_MAX_REQUEST_BYTES"] = str(MAX_BYTES)
        instance = ServeInstance(root / "data", root / "state")
        try:
            _deploy(instance)
            pid = ingress_pid()
            rows = served_rows(instance.url, pid, quick)
            profiled = (
                profile_section(instance.url, pid, *profile, 15.0 if quick else 30.0)
                if profile
                else ""
            )
        finally:
            instance.close()
    return "\n".join(
        [
            "### Served: the ingress replica's process CPU",
            "",
            "Sequential requests to seasonal-naive; CPU of the ingress replica's process (user + "
            "system) over the requests, less its idle rate, per request and per series answered. "
            "'body -> answer': JSON rows or an Arrow IPC body, answered as JSON or Arrow.",
            "",
            table(
                ["series/request", "body", "requests", "CPU ms / request", "CPU ms / series"], rows
            ),
            "",
            profiled,
        ]
    )


def _deploy(instance: Any) -> None:
    from ray import serve

    from bench.common import wait_for_health
    from deployments.builder import build_app_with_settings
    from sapheneia.settings import Settings

    settings = Settings(
        api_keys=API_KEY,
        data_dir=instance.data_dir,
        state_dir=instance.state_dir,
        rate_limit_per_minute=10_000_000,
        max_request_bytes=MAX_BYTES,
    )
    args = {
        "models_dir": "configs/models",
        "ingress": {"ray_actor_options": {"num_cpus": 0.25}},
        "models": [
            {
                "id": "seasonal-naive",
                "ray_actor_options": {"num_cpus": 0.25},
                "user_config": {"max_batch_size": 64, "batch_wait_timeout_s": 0.0},
            }
        ],
    }
    serve.run(build_app_with_settings(args, settings), name="api", route_prefix="/")
    wait_for_health(instance.url, {"seasonal-naive"})


def only_this_tree() -> None:
    """Import modules only from the tree this script runs in (``PYTHONPATH``): the editable
    install's finder would otherwise supply, from the working tree, the modules that a copy of an
    earlier commit lacks, and the steps probed with ``ImportError`` would measure today's code."""
    sys.meta_path[:] = [f for f in sys.meta_path if "Editable" not in getattr(f, "__name__", "")]


def main() -> None:
    only_this_tree()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=["steps", "served"])
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable for every Ray process (Ray Serve's RAY_SERVE_* settings)",
    )
    parser.add_argument(
        "--profile",
        default="32,json",
        help="series,body of the requests py-spy samples the ingress answering ('' for none)",
    )
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    for setting in args.env:  # the local Ray instance's processes inherit this environment
        name, _, value = setting.partition("=")
        os.environ[name] = value
    sections = []
    if args.only in (None, "steps"):
        sections.append(steps_section(args.quick))
    if args.only in (None, "served"):
        size, _, kind = args.profile.partition(",")
        sections.append(served_section(args.quick, (int(size), kind) if size else None))
    print("\n\n".join(sections))


if __name__ == "__main__":
    main()
