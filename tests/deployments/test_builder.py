"""serve_config.yaml args are validated before anything starts (no cluster needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from deployments.builder import AppArgs, deployment_options, model_configs

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["serve_config.yaml", "serve_config.gpu.yaml"])
def test_the_shipped_serve_configs_are_valid(name: str) -> None:
    config = yaml.safe_load((ROOT / name).read_text())
    (api,) = [app for app in config["applications"] if app["name"] == "api"]
    args = AppArgs.model_validate({**api["args"], "models_dir": str(ROOT / "configs/models")})
    configs = model_configs(args)
    assert {"seasonal-naive", "auto-ets", "timesfm-2.5"} <= set(configs)


def test_the_gpu_config_shares_one_gpu_among_its_foundation_models() -> None:
    config = yaml.safe_load((ROOT / "serve_config.gpu.yaml").read_text())
    (api,) = [app for app in config["applications"] if app["name"] == "api"]
    args = AppArgs.model_validate({**api["args"], "models_dir": str(ROOT / "configs/models")})
    configs = model_configs(args)
    on_gpu = [e for e in args.models if deployment_options(e)["ray_actor_options"].get("num_gpus")]
    assert len(on_gpu) >= 3
    assert sum(deployment_options(e)["ray_actor_options"]["num_gpus"] for e in on_gpu) <= 1.0
    for entry in on_gpu:
        assert configs[entry.id].device == "cuda" and configs[entry.id].dtype == "bfloat16"


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(ValidationError, match="listed twice"):
        AppArgs.model_validate({"models": [{"id": "auto-ets"}, {"id": "auto-ets"}]})


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match="replicas"):
        AppArgs.model_validate({"models": [{"id": "auto-ets", "replicas": 2}]})


def test_unknown_model_ids_are_refused() -> None:
    args = AppArgs.model_validate(
        {"models": [{"id": "no-such-model"}], "models_dir": str(ROOT / "configs/models")}
    )
    with pytest.raises(ValueError, match="unknown model id 'no-such-model'"):
        model_configs(args)


def test_alias_clash_is_refused() -> None:
    args = AppArgs.model_validate(
        {
            "models_dir": str(ROOT / "configs/models"),
            "models": [{"id": "auto-ets"}, {"id": "auto-theta", "aliases": ["auto-ets"]}],
        }
    )
    with pytest.raises(ValueError, match="used by both"):
        model_configs(args)


def test_batches_can_fill() -> None:
    with pytest.raises(ValidationError, match="must be at least max_batch_size"):
        AppArgs.model_validate(
            {
                "models": [
                    {
                        "id": "auto-ets",
                        "max_ongoing_requests": 5,
                        "user_config": {"max_batch_size": 32},
                    }
                ]
            }
        )
    entry = AppArgs.model_validate(
        {"models": [{"id": "auto-ets", "user_config": {"max_batch_size": 32}}]}
    ).models[0]
    assert deployment_options(entry)["max_ongoing_requests"] >= 32


def test_serve_config_overrides_reach_the_model_config() -> None:
    args = AppArgs.model_validate(
        {
            "models_dir": str(ROOT / "configs/models"),
            "models": [
                {
                    "id": "timesfm-2.5",
                    "threads": 2,
                    "checkpoint": "/weights",
                    "options": {"batch_size": 8},
                }
            ],
        }
    )
    config = model_configs(args)["timesfm-2.5"]
    assert config.threads == 2 and config.checkpoint == "/weights"
    assert config.options["batch_size"] == 8 and config.adapter == "timesfm-2.5"


def test_the_earlier_timesfm20_settings_still_apply(tmp_path: Path) -> None:
    from deployments.builder import ingress_options
    from sapheneia.settings import Settings

    settings = Settings(
        api_keys="k" * 16,
        state_dir=tmp_path,
        TIMESFM20_DEFAULT_CHECKPOINT="/weights/timesfm-2.0",
        TIMESFM20_DEFAULT_BACKEND="gpu",
        TIMESFM20_DEFAULT_CONTEXT_LEN=256,
        TIMESFM20_DEFAULT_HORIZON_LEN=48,
    )
    models_dir = str(ROOT / "configs/models")
    args = AppArgs.model_validate({"models_dir": models_dir, "models": [{"id": "timesfm-2.0"}]})
    config = model_configs(args, settings)["timesfm-2.0"]
    assert config.checkpoint == "/weights/timesfm-2.0" and config.device == "cuda"
    options = ingress_options(settings, args.ingress)
    assert options.request_defaults["timesfm-2.0"] == {"context_len": 256, "horizon_len": 48}
    # serve_config.yaml wins over the environment.
    args = AppArgs.model_validate(
        {"models_dir": models_dir, "models": [{"id": "timesfm-2.0", "checkpoint": "/other"}]}
    )
    assert model_configs(args, settings)["timesfm-2.0"].checkpoint == "/other"


def test_data_source_switches_reach_the_ingress(tmp_path: Path) -> None:
    from deployments.builder import IngressEntry, ingress_options
    from sapheneia.settings import Settings

    settings = Settings(
        api_keys="k" * 16,
        state_dir=tmp_path,
        SAPHENEIA_ALLOW_OBJECT_STORES=True,
        SAPHENEIA_ALLOW_PRIVATE_URLS=True,
    )
    options = ingress_options(settings, IngressEntry())
    assert options.limits.allow_object_stores and options.limits.allow_private_urls
    defaults = ingress_options(Settings(api_keys="k" * 16, state_dir=tmp_path), IngressEntry())
    assert not defaults.limits.allow_object_stores and not defaults.limits.allow_private_urls


def test_a_misspelt_option_fails_the_build_naming_it_and_the_valid_ones(tmp_path: Path) -> None:
    from deployments.builder import build_app_with_settings
    from sapheneia.errors import InvalidInput
    from sapheneia.settings import Settings

    args = {
        "models_dir": str(ROOT / "configs/models"),
        "models": [{"id": "auto-ets"}, {"id": "chronos-2", "options": {"cross_learnin": True}}],
    }
    with pytest.raises(InvalidInput) as raised:
        build_app_with_settings(args, Settings(api_keys="k" * 16, state_dir=tmp_path))
    assert raised.value.message == (
        "model 'chronos-2': unknown option 'cross_learnin'. "
        "Valid options: batch_size, cross_learning, max_context, max_horizon"
    )


@pytest.mark.parametrize(
    ("entry", "bad_key"),
    [
        ({"ray_actor_options": {"num_cpu": 1}}, "num_cpu"),
        ({"autoscaling_config": {"min_replica": 1}}, "min_replica"),
        ({"num_replica": 2}, "num_replica"),
    ],
)
def test_typos_in_serve_options_fail_with_the_key(entry: dict, bad_key: str) -> None:
    with pytest.raises(ValidationError, match=bad_key):
        AppArgs.model_validate({"models": [{"id": "auto-ets", **entry}]})


@pytest.mark.parametrize(
    ("ingress", "bad_key"),
    [({"ray_actor_options": {"num_cpu": 1}}, "num_cpu"), ({"num_replica": 2}, "num_replica")],
)
def test_typos_in_the_ingress_options_fail_with_the_key(ingress: dict, bad_key: str) -> None:
    with pytest.raises(ValidationError, match=bad_key):
        AppArgs.model_validate({"models": [{"id": "auto-ets"}], "ingress": ingress})


def test_the_ingress_gets_the_actor_options_as_given(tmp_path: Path) -> None:
    from deployments.builder import build_app_with_settings
    from sapheneia.settings import Settings

    def ingress_actor_options(args: dict) -> dict:
        app = build_app_with_settings(args, Settings(api_keys="k" * 16, state_dir=tmp_path))
        return dict(app._bound_deployment.ray_actor_options)

    models = {"models_dir": str(ROOT / "configs/models"), "models": [{"id": "auto-ets"}]}
    assert ingress_actor_options(models) == {"num_cpus": 0.5}
    placed = {"num_cpus": 0.1, "resources": {"head_node": 0.01}}
    assert ingress_actor_options({**models, "ingress": {"ray_actor_options": placed}}) == placed


def test_serve_validates_its_own_options() -> None:
    # Serve's own rule, from Serve's schema: a fixed count and autoscaling exclude each other.
    with pytest.raises(ValidationError, match="num_replicas is not allowed"):
        AppArgs.model_validate(
            {
                "models": [
                    {"id": "auto-ets", "num_replicas": 2, "autoscaling_config": {"max_replicas": 3}}
                ]
            }
        )


def test_serve_options_pass_through_over_the_defaults() -> None:
    (entry,) = AppArgs.model_validate(
        {
            "models": [
                {
                    "id": "auto-ets",
                    "max_queued_requests": 100,
                    "autoscaling_config": {"min_replicas": 1, "max_replicas": 3},
                    "ray_actor_options": {"num_cpus": 0.25},
                }
            ]
        }
    ).models
    options = deployment_options(entry)
    assert options["max_queued_requests"] == 100
    assert options["autoscaling_config"] == {"min_replicas": 1, "max_replicas": 3}
    assert options["ray_actor_options"] == {"num_cpus": 0.25}
    assert "num_replicas" not in options and options["name"] == "model-auto-ets"
