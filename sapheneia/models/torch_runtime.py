"""What every torch adapter shares: device and dtype from the config, inference mode, batch chunks.

Nothing here imports torch at module level, so naming a torch adapter in a config (and validating
its options) stays cheap; torch is imported when a model loads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any, ClassVar, Literal, TypeVar

from sapheneia.config import ModelConfig
from sapheneia.errors import ModelUnavailable
from sapheneia.models.base import ModelAdapter

T = TypeVar("T")
logger = logging.getLogger(__name__)

#: When a model runs in float32 whatever ``dtype`` the config asks for.
Float32 = Literal["never", "on cpu", "always"]


def use_threads(configs: Sequence[ModelConfig]) -> None:
    """The most torch threads any of ``configs`` asks for (``threads``), in this process.

    Ray gives a model replica or a job's actor floor(num_cpus) threads; a model that should use
    more cores than its scheduling share says so in its config. For a process that serves these
    models alone: the setting is the whole process's.
    """
    threads = max((c.threads for c in configs if c.threads is not None), default=None)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


class ModelThread:
    """The one thread on which a process calls its models (loading, forecasting, unloading).

    torch's CPU kernels run on OpenMP (libgomp), which keeps a pool of worker threads for each
    thread that calls into it and stops spinning those workers between kernels once the process
    holds more of them than it has CPUs. A model called from varying threads (``asyncio.to_thread``)
    after loading on another one therefore ran a TimesFM-2.5 batch of 32 on 2 cores 35-40 % slower
    than the same call on one thread (bench/RESULTS.md); calling it from one thread keeps one pool.
    """

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    def call(self, function: Callable[..., T], *args: Any) -> T:
        """Run ``function(*args)`` on the model thread and wait for it (from any other thread)."""
        return self._executor.submit(function, *args).result()

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """Await ``function(*args)`` on the model thread, leaving the event loop free meanwhile."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def torch_device(config: ModelConfig) -> Any:
    """``config.device`` as a ``torch.device``; 'auto' is the first GPU when there is one. A GPU
    this machine does not have makes the model unavailable, with the fix, rather than failing."""
    import torch

    if config.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(config.device)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (device.index or 0) >= count:
            found = f"{count} CUDA device(s)" if count else "no CUDA device that torch can use"
            raise ModelUnavailable(
                f"model '{config.id}' is configured for device '{config.device}', but this "
                f"replica sees {found}; set device: auto (or cpu), or give the replica a GPU "
                "(ray_actor_options num_gpus in serve_config.yaml)"
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ModelUnavailable(
            f"model '{config.id}' is configured for device 'mps', which this machine does not "
            "have; set device: auto or cpu"
        )
    return device


def torch_dtype(config: ModelConfig, device: Any, float32: Float32 = "never") -> Any:
    """``config.dtype`` as a ``torch.dtype``, or float32 where the model needs it (``float32``);
    a half precision asked for and not used is logged, so that the operator sees it."""
    import torch

    if float32 == "always" or (float32 == "on cpu" and device.type == "cpu"):
        if config.dtype != "float32":
            where = "on CPU" if float32 == "on cpu" else "on any device"
            logger.warning(
                "model %s: dtype %s is not used %s, this model runs in float32 there; set "
                "dtype: float32 to say so",
                config.id,
                config.dtype,
                where,
            )
        return torch.float32
    return getattr(torch, config.dtype)


def inference(device: Any, dtype: Any) -> ExitStack[bool | None]:
    """No autograd; with half-precision weights, autocast so that float32 inputs meet them."""
    import torch

    stack = ExitStack()
    stack.enter_context(torch.inference_mode())
    if dtype != torch.float32:
        stack.enter_context(torch.autocast(device_type=device.type, dtype=dtype))
    return stack


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """``items`` in consecutive pieces of at most ``size``, the last one shorter."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


class TorchAdapter(ModelAdapter):
    """An adapter whose model runs on torch: ``device`` and ``dtype`` are chosen from the config
    when it loads, and ``inference()`` is the context every forward pass runs in."""

    #: Where the model must run in float32 whatever the config says (see ``torch_dtype``).
    float32: ClassVar[Float32] = "never"
    device: Any = None
    dtype: Any = None

    def load(self) -> None:
        if not self.loaded:
            self.device = torch_device(self.config)
            self.dtype = torch_dtype(self.config, self.device, self.float32)
        super().load()

    def inference(self) -> ExitStack[bool | None]:
        return inference(self.device, self.dtype)
