"""The Data, Forecast and Backtest tabs' event handlers: each turns the form's values into
component updates. The API key is an argument of each call and is never stored."""

from __future__ import annotations

from typing import Any

import gradio as gr

from frontend import handlers as h
from frontend.api_client import ApiClient
from frontend.columns import COVARIATE_ROLES, detect_mapping, series_names
from frontend.payloads import Table
from frontend.reports import calibration_note, coverage_table, left_out_text, selection_table
from frontend.signed_in import SignedIn, readable
from frontend.tables import PREVIEW_ROWS, read_sample, read_upload, report
from frontend.text import error, plain


def _report(table: Table, mapping: Any) -> str:
    try:
        return report(table.frame, mapping)
    except Exception as problem:  # the report is advice: never block the form on it
        return readable(problem)


def _series_dropdowns(table: Table, series_id: str | None) -> list[Any]:
    """The series pickers of the Forecast, Backtest and Anomalies tabs."""
    names = series_names(table.frame, series_id)
    return [gr.Dropdown(choices=names, value=names[0] if names else None) for _ in range(3)]


def _loaded(table: Table, roles: dict[str, str] | None) -> tuple[Any, ...]:
    columns = list(table.frame.columns)
    mapping = detect_mapping(table.frame)
    found = mapping.covariates if mapping else {}
    covariates = roles if roles is not None else found
    message = f"Loaded {table.file_name}: {len(table.frame)} rows, {len(columns)} columns."
    note = (
        plain(message)
        if mapping
        else error(f"{message} No timestamp or numeric target found: choose them below.")
    )
    return (
        table,
        table.frame.head(PREVIEW_ROWS),
        gr.Dropdown(choices=columns, value=mapping.timestamp if mapping else None),
        gr.Dropdown(
            choices=[h.NO_SERIES, *columns],
            value=(mapping.series_id if mapping else None) or h.NO_SERIES,
        ),
        gr.Dropdown(choices=columns, value=mapping.target if mapping else None),
        *[
            gr.Dropdown(choices=columns, value=[c for c, r in covariates.items() if r == role])
            for role in COVARIATE_ROLES
        ],
        _report(table, mapping) if mapping else "",
        note,
        *_series_dropdowns(table, mapping.series_id if mapping else None),
    )


# Outputs of a data load, in order: table, preview, timestamp, series id, target, four role
# pickers, report, message, the three series pickers.
LOADED_OUTPUTS = 14
# Gradio finds the progress tracker by a positional parameter whose default is a Progress.
PROGRESS = gr.Progress()
MESSAGE_AT = 10


def _load_failed(problem: Exception) -> tuple[Any, ...]:
    skips = [gr.skip()] * LOADED_OUTPUTS
    skips[MESSAGE_AT] = readable(problem)
    return tuple(skips)


class Events(SignedIn):
    """The Data, Forecast and Backtest tabs' handlers."""

    def on_connect(self, request: gr.Request) -> tuple[Any, ...]:
        """Status, the Forecast and Backtest model lists, the models table, and the Anomalies
        and Jobs model pickers (model ids only: auto and ensemble are Forecast's)."""
        try:
            with ApiClient(self.api_base_url, self._key(request)) as client:
                choices, ready, table = h.model_choices(client)
        except Exception as problem:
            return (readable(problem), *(gr.skip(),) * 5)
        picked = ready[:1]
        first = picked[0] if picked else None
        return (
            plain(
                f"Connected to {self.api_base_url}: {len(ready)} of {len(choices)} models ready."
            ),
            gr.CheckboxGroup(choices=[*choices, *h.SELECTORS], value=picked),
            gr.CheckboxGroup(choices=choices, value=picked),
            table,
            gr.Dropdown(choices=choices, value=first),
            gr.Dropdown(choices=choices, value=[]),  # a job's model is always picked on purpose
        )

    def on_upload(self, request: gr.Request, path: str | None) -> tuple[Any, ...]:
        if not path:
            return (gr.skip(),) * LOADED_OUTPUTS
        try:
            self._key(request)
            return _loaded(read_upload(path, self.max_upload_bytes), None)
        except Exception as problem:
            return _load_failed(problem)

    def on_sample(self, request: gr.Request, name: str | None) -> tuple[Any, ...]:
        if not name:
            return (gr.skip(),) * LOADED_OUTPUTS
        try:
            self._key(request)
            return _loaded(*read_sample(name))
        except Exception as problem:
            return _load_failed(problem)

    def on_mapping(self, table: Table | None, ts: str, sid: str, tgt: str, *lists: Any) -> Any:
        if table is None:
            return (gr.skip(),) * 8
        reserved = {ts, sid, tgt}
        kept = [gr.Dropdown(value=[c for c in v or [] if c not in reserved]) for v in lists]
        try:
            mapping = h.mapping_from(ts, sid, tgt, h.role_lists(*[[]] * 4))
            text = _report(table, mapping)
        except Exception as problem:
            return (*kept, readable(problem), gr.skip(), gr.skip(), gr.skip())
        return (*kept, text, *_series_dropdowns(table, mapping.series_id))

    def on_forecast(
        self, request: gr.Request, table: Table | None, ts: str, sid: str, tgt: str,
        dynamic_numerical: list[str], dynamic_categorical: list[str],
        static_numerical: list[str], static_categorical: list[str],
        chosen: list[str], horizon_: int, context_: int, quantiles_: str, freq_: str,
        covariates_: bool, calibrate_: bool, series: str | None, progress: Any = PROGRESS,
    ) -> tuple[Any, ...]:  # fmt: skip
        """Message, plot, download, curl, Python, the run, the selection and coverage tables."""
        lists = [dynamic_numerical, dynamic_categorical, static_numerical, static_categorical]
        nothing = (gr.skip(),) * 7
        try:
            client = ApiClient(self.api_base_url, self._key(request))  # MissingKey: no request
            table = h.require_table(table)
            mapping = h.mapping_from(ts, sid, tgt, h.role_lists(*lists))
            with client:
                run_, failures, body = h.run_forecasts(
                    client, table, mapping, list(chosen or []), horizon=horizon_,
                    context_length=context_, quantiles_text=quantiles_, freq=freq_,
                    use_covariates=covariates_, calibrate=calibrate_, progress=progress,
                )  # fmt: skip
        except Exception as problem:
            return (readable(problem), *nothing)
        if not run_.forecasts:
            return (h.failure_text(failures), *nothing)
        path, curl_text, python_text = h.export_outputs(
            self.api_base_url, table, run_, body, keep_s=self.keep_files_s
        )
        rows = sum(len(f) for f in run_.forecasts.values())
        done = plain(f"Forecast done: {', '.join(run_.forecasts)} ({rows} rows).")
        notes = [plain(n) for n in left_out_text(run_.extras) + calibration_note(run_.extras)]
        chosen_ = selection_table(run_.extras)
        coverage = coverage_table(run_.extras)
        return (
            "\n\n".join([done, *notes, h.failure_text(failures)]),
            h.forecast_plot(table, run_, series),
            gr.DownloadButton(value=path, interactive=True),
            curl_text,
            python_text,
            run_,
            gr.Dataframe(value=chosen_, visible=not chosen_.empty),
            gr.Dataframe(value=coverage, visible=not coverage.empty),
        )

    def on_plot_series(self, table: Table | None, run_: Any, series: str | None) -> Any:
        if table is None or run_ is None:
            return gr.skip()
        return h.forecast_plot(table, run_, series)

    def on_backtest(
        self, request: gr.Request, table: Table | None, ts: str, sid: str, tgt: str,
        dynamic_numerical: list[str], dynamic_categorical: list[str],
        static_numerical: list[str], static_categorical: list[str],
        chosen: list[str], horizon_: int, windows_: int, step_: int, quantiles_: str,
        covariates_: bool, series: str | None, progress: Any = PROGRESS,
    ) -> tuple[Any, ...]:  # fmt: skip
        lists = [dynamic_numerical, dynamic_categorical, static_numerical, static_categorical]
        try:
            client = ApiClient(self.api_base_url, self._key(request))
            table = h.require_table(table)
            mapping = h.mapping_from(ts, sid, tgt, h.role_lists(*lists))
            progress(0.1, desc=f"Backtesting {', '.join(chosen or [])}")
            with client:
                table_, figure = h.run_backtest(
                    client, table, mapping, list(chosen or []), horizon=horizon_,
                    n_windows=windows_, step=step_, quantiles_text=quantiles_,
                    use_covariates=covariates_, series=series,
                )  # fmt: skip
        except Exception as problem:
            return readable(problem), gr.skip(), gr.skip()
        return plain(f"Backtest done: {len(table_)} models."), table_, figure
