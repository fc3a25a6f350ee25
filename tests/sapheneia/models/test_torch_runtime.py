"""Device and dtype per model, on CPU: what each option does, and the messages when it cannot.

Decided here: half precision on CPU runs where the library runs it (TimesFM, in bfloat16 or
float16); Chronos and FlowState run float32 on CPU whatever the config asks, and log that they do.
A device the machine lacks makes the model unavailable with the fix; a device name that is not one
is refused when the config is read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from sapheneia.config import ModelConfig
from sapheneia.errors import ModelUnavailable
from sapheneia.models import create_adapter
from sapheneia.tasks import ForecastResult
from sapheneia.testing import make_task
from sapheneia.testing.checkpoints import write_tiny_timesfm_2p0
from sapheneia.testing.chronos import write_tiny_chronos_bolt

SERIES = 50 + 10 * np.sin(np.arange(96) / 5)


@pytest.fixture(scope="module", autouse=True)
def offline() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        yield


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("weights")
    return {
        "timesfm-2.0": write_tiny_timesfm_2p0(root / "timesfm-2.0"),
        "chronos-bolt-small": write_tiny_chronos_bolt(root / "chronos-bolt"),
    }


def forecast(model_id: str, checkpoint: Path, **config: str) -> tuple[object, ForecastResult]:
    adapter_name = {"timesfm-2.0": "timesfm-2.0", "chronos-bolt-small": "chronos-bolt"}[model_id]
    adapter = create_adapter(
        ModelConfig(id=model_id, adapter=adapter_name, checkpoint=str(checkpoint), **config)
    )
    adapter.load()
    (result,) = adapter.forecast([make_task("s", SERIES, horizon=8)])
    assert isinstance(result, ForecastResult), result
    return adapter, result


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:3", "mps"])
def test_devices_a_config_may_name(device: str) -> None:
    assert ModelConfig(id="m", adapter="timesfm-2.5", device=device).device == device


@pytest.mark.parametrize("device", ["gpu", "CUDA", "cuda:x", "tpu", ""])
def test_a_device_that_is_none_is_refused_naming_the_choices(device: str) -> None:
    with pytest.raises(ValidationError, match=r"device must be 'auto', 'cpu', 'cuda', 'cuda:N'"):
        ModelConfig(id="m", adapter="timesfm-2.5", device=device)


def test_a_half_dtype_that_is_none_is_refused() -> None:
    with pytest.raises(ValidationError, match="float32', 'bfloat16' or 'float16'"):
        ModelConfig(id="m", adapter="timesfm-2.5", dtype="half")  # type: ignore[arg-type]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_a_gpu_this_machine_lacks_makes_the_model_unavailable_with_the_fix(
    checkpoints: dict[str, Path],
) -> None:
    adapter = create_adapter(
        ModelConfig(
            id="chronos-bolt-small",
            adapter="chronos-bolt",
            checkpoint=str(checkpoints["chronos-bolt-small"]),
            device="cuda:1",
        )
    )
    with pytest.raises(ModelUnavailable) as raised:
        adapter.load()
    assert raised.value.message == (
        "model 'chronos-bolt-small' is configured for device 'cuda:1', but this replica sees no "
        "CUDA device that torch can use; set device: auto (or cpu), or give the replica a GPU "
        "(ray_actor_options num_gpus in serve_config.yaml)"
    )


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_timesfm_runs_half_precision_on_cpu_close_to_float32(
    checkpoints: dict[str, Path], dtype: str
) -> None:
    _, full = forecast("timesfm-2.0", checkpoints["timesfm-2.0"], device="cpu")
    adapter, half = forecast("timesfm-2.0", checkpoints["timesfm-2.0"], device="cpu", dtype=dtype)
    assert adapter.dtype == getattr(torch, dtype)  # type: ignore[attr-defined]
    assert next(adapter.model.parameters()).dtype == getattr(torch, dtype)  # type: ignore[attr-defined]
    assert np.isfinite(half.mean).all()
    # bfloat16 keeps 8 bits of mantissa: within a percent of the float32 forecast.
    np.testing.assert_allclose(half.mean, full.mean, rtol=0.02)


def test_chronos_runs_float32_on_cpu_and_says_so(
    checkpoints: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    _, full = forecast("chronos-bolt-small", checkpoints["chronos-bolt-small"], device="cpu")
    with caplog.at_level(logging.WARNING, logger="sapheneia.models.torch_runtime"):
        adapter, asked = forecast(
            "chronos-bolt-small", checkpoints["chronos-bolt-small"], device="cpu", dtype="bfloat16"
        )
    assert adapter.dtype == torch.float32  # type: ignore[attr-defined]
    np.testing.assert_array_equal(asked.mean, full.mean)
    assert (
        "model chronos-bolt-small: dtype bfloat16 is not used on CPU, this model runs in float32 "
        "there; set dtype: float32 to say so"
    ) in caplog.messages
