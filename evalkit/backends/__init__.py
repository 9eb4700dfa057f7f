"""Backends turn batches of (images, prompt) requests into texts with greedy decoding, and the registry
that names them: a model config's `backend:` and the `openai:` / `vllm:` / `scripted:` prefixes of `--model`
pick one here. A new backend is a new entry (`register_backend`); nothing that runs tasks changes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.backends.base import Backend, Failure, Request
from evalkit.errors import ConfigError

if TYPE_CHECKING:
    from evalkit.models import ModelSpec

__all__ = ["BACKENDS", "Backend", "BackendKind", "BackendOptions", "Failure", "Request", "get_backend_kind"]


@dataclass(frozen=True)
class BackendOptions:
    """What the command line (or a sweep) says about the backend; None: the model config's, else a default."""

    dtype: str | None = None
    base_url: str | None = None
    concurrency: int | None = None
    batch_size: int | None = None
    timeout: float = 120.0
    max_retries: int = 5
    tensor_parallel_size: int | None = None  # GPUs one model copy spans (vllm backend)


@dataclass(frozen=True)
class BackendKind:
    """A registered backend: how to build it (lazily, only when a task has work), whether it decodes in
    fixed batches (True) or keeps concurrent requests in flight (False), and its default batch size."""

    name: str
    build: Callable[[ModelSpec, BackendOptions], Backend]
    batched: bool = True
    default_batch: Callable[[ModelSpec, BackendOptions], int] = lambda spec, opts: 8
    serves_template: bool = False  # the server applies its own chat template (only the system prompt is ours)
    pins: tuple[str, ...] = ()  # settings a resumed run must match besides the target (e.g. dtype)
    loads_checkpoint: bool = False  # runs a checkpoint itself: located, converted, templated by us
    tensor_parallel: bool = False  # takes --tensor-parallel-size
    preflight: Callable[[], None] = lambda: None  # before anything is resolved: packages, launch mode


BACKENDS: dict[str, BackendKind] = {}


def register_backend(kind: BackendKind) -> BackendKind:
    if kind.name in BACKENDS:
        raise ConfigError(f"backend {kind.name!r} is registered twice")
    BACKENDS[kind.name] = kind
    return kind


def get_backend_kind(name: str) -> BackendKind:
    try:
        return BACKENDS[name]
    except KeyError:
        raise ConfigError(f"unknown backend {name!r} (known: {', '.join(sorted(BACKENDS))})") from None


def _checkpoint_folder(spec: ModelSpec) -> tuple[Path, dict[str, Any]]:
    """The spec's transformers folder (an original LLaVA / ShareGPT4V / xtuner one converted) and what
    identifies it."""
    from evalkit.checkpoints import detect, materialise
    from evalkit.models import locate

    spec = locate(spec)
    folder = materialise(detect(spec.options["path"]), spec.options.get("vision_tower"))
    info = {"checkpoint": spec.pinned_target()}
    info.update({k: spec.options[k] for k in ("commit", "format", "content") if spec.options.get(k)})
    if folder != Path(spec.options["path"]):
        info["converted"] = str(folder)
    return folder, info


def _hf(spec: ModelSpec, o: BackendOptions) -> Backend:
    from evalkit.backends.hf import HFBackend

    folder, info = _checkpoint_folder(spec)
    return HFBackend(
        folder,
        dtype=o.dtype or spec.options.get("dtype", "auto"),
        trust_remote_code=bool(spec.options.get("trust_remote_code", False)),
        batch_size=o.batch_size or 8,
        stop=spec.options.get("stop"),
        info=info,
    )


def _openai_concurrency(spec: ModelSpec, o: BackendOptions) -> int:
    from evalkit.backends.openai import DEFAULT_CONCURRENCY

    return o.concurrency or int(spec.options.get("concurrency") or DEFAULT_CONCURRENCY)


def _openai(spec: ModelSpec, o: BackendOptions) -> Backend:
    from evalkit.backends.openai import OpenAIBackend

    return OpenAIBackend(
        spec.target,
        base_url=o.base_url or spec.options.get("base_url"),
        concurrency=_openai_concurrency(spec, o),
        api_key_env=spec.options.get("api_key_env", "OPENAI_API_KEY"),
        timeout=o.timeout,
        max_retries=o.max_retries,
    )


def _vllm_preflight() -> None:
    from evalkit.backends.vllm import preflight

    preflight()


def _vllm(spec: ModelSpec, o: BackendOptions) -> Backend:
    from evalkit.backends.vllm import DEFAULT_BATCH, build_vllm_backend

    folder, info = _checkpoint_folder(spec)
    engine_args = {
        k: spec.options[k] for k in ("max_model_len", "gpu_memory_utilization") if k in spec.options
    }
    return build_vllm_backend(
        folder,
        dtype=o.dtype or spec.options.get("dtype", "auto"),
        tensor_parallel_size=o.tensor_parallel_size or int(spec.options.get("tensor_parallel_size") or 1),
        trust_remote_code=bool(spec.options.get("trust_remote_code", False)),
        stop=spec.options.get("stop"),
        max_images=int(spec.options.get("max_images") or 1),
        batch_size=o.batch_size or DEFAULT_BATCH,
        engine_args=engine_args,
        info=info,
    )


def _vllm_batch(spec: ModelSpec, o: BackendOptions) -> int:
    from evalkit.backends.vllm import DEFAULT_BATCH

    return DEFAULT_BATCH


def _scripted(spec: ModelSpec, o: BackendOptions) -> Backend:
    from evalkit.backends.scripted import ScriptedBackend

    return ScriptedBackend.from_file(spec.target, batch_size=o.batch_size or 8)


register_backend(BackendKind("hf", _hf, batched=True, pins=("dtype",), loads_checkpoint=True))
register_backend(
    BackendKind("openai", _openai, batched=False, default_batch=_openai_concurrency, serves_template=True)
)
register_backend(BackendKind("scripted", _scripted, batched=True))
register_backend(  # tensor parallel size: recorded (metrics.json), not pinned, like the batch size
    BackendKind(
        "vllm",
        _vllm,
        batched=True,
        default_batch=_vllm_batch,
        pins=("dtype",),
        loads_checkpoint=True,
        tensor_parallel=True,
        preflight=_vllm_preflight,
    )
)


def describe(kind: BackendKind, spec: ModelSpec, options: BackendOptions) -> dict[str, Any]:
    """The settings that identify the model's outputs (pinned on resume)."""
    found: dict[str, Any] = {
        "backend": kind.name,
        "target": spec.pinned_target(),
        "revision": spec.options.get("commit") or spec.options.get("revision"),
    }
    if "dtype" in kind.pins:
        found["dtype"] = options.dtype or spec.options.get("dtype", "auto")
    for key in ("content", "stop"):  # the checkpoint's fingerprint; output-changing settings
        if spec.options.get(key) is not None:
            found[key] = spec.options[key]
    return found
