"""Resolving MODEL on the command line to a backend: a config name, a checkpoint folder, or openai:<id>.

Model configs live in `configs/models/<name>.yaml` (or `$EVALKIT_CONFIGS/models/`):
`backend` (hf|openai), `checkpoint` (path) or `model` (endpoint model id), `base_url`, `dtype`,
`trust_remote_code`, `protocol` (default protocol), `display_name`, `llm`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from evalkit.backends.base import Backend
from evalkit.errors import ConfigError


@dataclass(frozen=True)
class ModelSpec:
    name: str  # default results folder name
    backend: str
    target: str  # checkpoint path or endpoint model id
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def batched(self) -> bool:
        """hf decodes in batches; openai keeps concurrent requests in flight."""
        return self.backend == "hf"

    def batch_size(self, requested: int | None, concurrency: int | None) -> int:
        if requested:
            return requested
        if self.backend == "openai":
            from evalkit.backends.openai import DEFAULT_CONCURRENCY

            return concurrency or int(self.options.get("concurrency") or DEFAULT_CONCURRENCY)
        return int(self.options.get("batch_size") or 8)

    def settings(self, dtype: str | None) -> dict[str, Any]:
        """What identifies the model's outputs beyond its name; a resumed run must match it."""
        target = self.target
        if self.backend == "hf" and Path(target).expanduser().is_dir():
            target = str(Path(target).expanduser().resolve())
        found = {"backend": self.backend, "target": target, "revision": self.options.get("revision")}
        if self.backend == "hf":
            found["dtype"] = dtype or self.options.get("dtype", "auto")
        return found

    def template(self) -> tuple[bool, str | None]:
        """(use the protocol's template?, the config's own): a config may name one, or "native"."""
        if "template" not in self.options:
            return True, None
        chosen = self.options["template"]
        return False, None if chosen in (None, "native") else str(chosen)


DTYPES = ("auto", "float16", "bfloat16", "float32")


def check_dtype(dtype: str | None) -> None:
    """Refuse an unknown dtype before anything is written or loaded."""
    if dtype is not None and dtype not in DTYPES:
        raise ConfigError(f"--dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")


def config_dirs() -> list[Path]:
    dirs = [Path(p) / "models" for p in filter(None, os.environ.get("EVALKIT_CONFIGS", "").split(os.pathsep))]
    return [
        *dirs,
        Path.cwd() / "configs" / "models",
        Path(__file__).resolve().parent.parent / "configs" / "models",
    ]


def list_configs() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in config_dirs():
        for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
            found.setdefault(path.stem, path)
    return found


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "model"


def resolve_model(model: str) -> ModelSpec:
    if model.startswith("openai:"):
        model_id = model.removeprefix("openai:")
        if not model_id:
            raise ConfigError("openai:<model-id> needs a model id, e.g. openai:llava-hf/llava-1.5-7b-hf")
        return ModelSpec(name=slug(model_id), backend="openai", target=model_id)
    configs = list_configs()
    if model in configs:
        path = configs[model]
        try:
            cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: malformed YAML ({exc})") from exc
        backend = cfg.get("backend", "hf")
        target = cfg.get("checkpoint") or cfg.get("model")
        if backend not in ("hf", "openai") or not target:
            raise ConfigError(f"{path}: needs backend hf|openai and checkpoint (hf) or model (openai)")
        options = {k: v for k, v in cfg.items() if k not in ("backend", "checkpoint", "model")}
        options["from_config"] = True
        return ModelSpec(name=model, backend=backend, target=str(target), options=options)
    path = Path(model).expanduser()
    if path.is_dir():
        return ModelSpec(name=slug(path.resolve().name), backend="hf", target=str(path))
    raise ConfigError(
        f"model {model!r} is not a config in {', '.join(str(d) for d in config_dirs()[-2:])}, "
        "a checkpoint folder, or openai:<model-id>"
    )


def backend_factory(
    spec: ModelSpec,
    *,
    dtype: str | None,
    base_url: str | None,
    concurrency: int | None,
    batch_size: int | None,
    timeout: float = 120.0,
    max_retries: int = 5,
) -> Callable[[], Backend]:
    """A zero-argument constructor, so the model is only loaded when a task has work."""
    opts = spec.options
    if spec.backend == "openai":
        from evalkit.backends.openai import DEFAULT_CONCURRENCY, OpenAIBackend

        return lambda: OpenAIBackend(
            spec.target,
            base_url=base_url or opts.get("base_url"),
            concurrency=concurrency or opts.get("concurrency") or DEFAULT_CONCURRENCY,
            api_key_env=opts.get("api_key_env", "OPENAI_API_KEY"),
            timeout=timeout,
            max_retries=max_retries,
        )

    def build() -> Backend:
        from evalkit.backends.hf import HFBackend

        return HFBackend(
            spec.target,
            dtype=dtype or opts.get("dtype", "auto"),
            trust_remote_code=bool(opts.get("trust_remote_code", False)),
            batch_size=batch_size or 8,
            revision=opts.get("revision"),
            allow_hub=bool(opts.get("from_config")),
        )

    return build
