"""``validate_config``: a config's options are checked against its adapter's options model before
anything loads, with a message that names the model, the bad option and the valid ones."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sapheneia.config import ModelConfig, load_model_configs
from sapheneia.errors import InvalidInput
from sapheneia.models.registry import ADAPTERS, validate_config

ROOT = Path(__file__).resolve().parents[3]

#: The options each built-in adapter takes (the statistical one also takes its statsforecast
#: class's own settings, checked in test_statistical.py).
VALID = {
    "statsforecast": "max_context, method",
    "timesfm-2.0": "batch_size, max_context, max_horizon, ridge, xreg_mode",
    "timesfm-2.5": "batch_size, max_context, max_horizon, normalize_inputs, ridge, "
    "torch_compile, xreg_mode",
    "timesfm-3.0": "batch_size, max_context, max_horizon",
    "chronos-bolt": "batch_size, max_context, max_horizon",
    "chronos-2": "batch_size, cross_learning, max_context, max_horizon",
    "flowstate": "batch_size, domain, max_horizon, scale_factor",
    "prophet": "prophet, seed, timeout_s, uncertainty_samples, workers",
}


def test_every_adapter_is_covered() -> None:
    assert set(VALID) == set(ADAPTERS)


@pytest.mark.parametrize("adapter", sorted(set(VALID) - {"statsforecast"}))
def test_a_misspelt_option_names_itself_and_the_valid_ones(adapter: str) -> None:
    config = ModelConfig(id="m", adapter=adapter, options={"batch_sise": 8})
    with pytest.raises(InvalidInput) as raised:
        validate_config(config)
    assert raised.value.message == (
        f"model 'm': unknown option 'batch_sise'. Valid options: {VALID[adapter]}"
    )


def test_a_statsforecast_setting_passes_and_a_typo_of_one_fails() -> None:
    validate_config(ModelConfig(id="auto-ets", adapter="statsforecast", options={"model": "AAN"}))
    with pytest.raises(InvalidInput) as raised:
        validate_config(
            ModelConfig(id="auto-ets", adapter="statsforecast", options={"modle": "AAN"})
        )
    assert raised.value.message == (
        "model 'auto-ets': unknown option 'modle' (not a setting of statsforecast's AutoETS). "
        "Valid options: max_context, method, alias, damped, distribution, model, phi, "
        "prediction_intervals"
    )


def test_each_valid_option_is_named_once() -> None:
    # AutoARIMA has a 'method' setting of its own; 'method' is the adapter's option.
    with pytest.raises(InvalidInput) as raised:
        validate_config(
            ModelConfig(id="auto-arima", adapter="statsforecast", options={"max_pp": 2})
        )
    valid = raised.value.message.split("Valid options: ", 1)[1].split(", ")
    assert valid[:2] == ["max_context", "method"] and len(valid) == len(set(valid))
    assert {"max_p", "stepwise"} <= set(valid)


def test_a_wrong_value_names_the_option_and_the_rule() -> None:
    config = ModelConfig(id="m", adapter="chronos-2", options={"batch_size": 0})
    with pytest.raises(InvalidInput) as raised:
        validate_config(config)
    assert raised.value.message == (
        "model 'm': option 'batch_size': Input should be greater than or equal to 1. "
        "Valid options: batch_size, cross_learning, max_context, max_horizon"
    )
    too_long = ModelConfig(
        id="m", adapter="timesfm-2.5", options={"max_context": 16000, "max_horizon": 1000}
    )
    with pytest.raises(InvalidInput, match=r"max_context \+ max_horizon \(16000 \+ 1000\) exceed"):
        validate_config(too_long)


def test_an_unknown_adapter_is_refused() -> None:
    with pytest.raises(InvalidInput, match="unknown adapter 'chronos-3'"):
        validate_config(ModelConfig(id="m", adapter="chronos-3"))


def test_a_typo_in_a_config_file_fails_loading_the_folder(tmp_path: Path) -> None:
    (tmp_path / "chronos-2.yaml").write_text(
        "id: chronos-2\nadapter: chronos-2\noptions:\n  cross_learnin: true\n"
    )
    with pytest.raises(InvalidInput) as raised:
        load_model_configs(tmp_path)
    assert raised.value.message == (
        "model 'chronos-2': unknown option 'cross_learnin'. "
        "Valid options: batch_size, cross_learning, max_context, max_horizon"
    )


def test_validating_the_shipped_configs_imports_no_model_library() -> None:
    code = (
        "import sys; from pathlib import Path; from sapheneia.config import load_model_configs; "
        "configs = load_model_configs(Path('configs/models')); assert {'chronos-2', 'prophet', 'auto-ets'} <= set(configs); "
        "loaded = {'torch', 'transformers', 'chronos', 'timesfm', 'prophet'} & set(sys.modules); "
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)
