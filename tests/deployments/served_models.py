"""Foundation models served in the session's test app, from random-weight checkpoints.

Each entry loads through the same adapter code a real checkpoint uses; only the weights differ.
The statistical app already lists ``timesfm-2.5`` (pointing at a missing directory, to show
``unavailable``), so the served TimesFM-2.5 runs under its own id, ``timesfm-2.5-local``; and
``chronos-bolt-tiny`` keeps its default hub checkpoint, which offline must report ``unavailable``
with the fix while every other model serves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: Id of the TimesFM-2.5 served from the random-weight checkpoint.
TIMESFM_2P5 = "timesfm-2.5-local"
#: TimesFM-2.5 normalises over the padded context, so the test's reference must use the same value.
TIMESFM_2P5_MAX_CONTEXT = 128
#: Prophet's options here; the test's direct fit uses the same ones.
PROPHET_OPTIONS = {"seed": 7, "uncertainty_samples": 300, "timeout_s": 120}

SMALL = {"num_cpus": 0.1}
BATCHING = {"max_batch_size": 32, "batch_wait_timeout_s": 0.2}


def write_checkpoints(directory: Path) -> dict[str, Path]:
    """Model id -> checkpoint directory."""
    from sapheneia.testing import write_random_timesfm_2p5, write_tiny_timesfm_2p0
    from sapheneia.testing.chronos import write_tiny_chronos_2, write_tiny_chronos_bolt
    from sapheneia.testing.flowstate import write_tiny_flowstate

    return {
        "timesfm-2.0": write_tiny_timesfm_2p0(directory / "timesfm-2.0"),
        TIMESFM_2P5: write_random_timesfm_2p5(directory / "timesfm-2.5"),
        "chronos-bolt": write_tiny_chronos_bolt(directory / "chronos-bolt"),
        "chronos-2": write_tiny_chronos_2(directory / "chronos-2"),
        "flowstate": write_tiny_flowstate(directory / "flowstate"),
    }


def model_entries(checkpoints: dict[str, Path]) -> list[dict[str, Any]]:
    """``serve_config.yaml``-style entries for the models above."""

    def served(model_id: str, **fields: Any) -> dict[str, Any]:
        return {
            "id": model_id,
            "checkpoint": str(checkpoints[model_id]),
            "ray_actor_options": SMALL,
            "user_config": BATCHING,
            **fields,
        }

    return [
        served("timesfm-2.0"),
        served(
            TIMESFM_2P5,
            adapter="timesfm-2.5",
            options={"max_context": TIMESFM_2P5_MAX_CONTEXT, "batch_size": 32},
        ),
        served("chronos-bolt", adapter="chronos-bolt"),
        served("chronos-2"),
        served("flowstate"),
        {
            "id": "prophet",
            "options": PROPHET_OPTIONS,
            "ray_actor_options": SMALL,
            "user_config": BATCHING,
        },
        # The config's default hub checkpoint: offline, this one must be 'unavailable'.
        {"id": "chronos-bolt-tiny", "ray_actor_options": SMALL},
    ]
