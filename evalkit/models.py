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

from evalkit.backends import BACKENDS, BackendKind, BackendOptions, get_backend_kind
from evalkit.backends.base import Backend
from evalkit.errors import ConfigError


@dataclass(frozen=True)
class ModelSpec:
    name: str  # default results folder name
    backend: str  # a registered backend (evalkit.backends.BACKENDS)
    target: str  # checkpoint path, endpoint model id, replies file
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> BackendKind:
        return get_backend_kind(self.backend)

    @property
    def batched(self) -> bool:
        """Fixed batches (hf, scripted) or concurrent requests in flight (openai)."""
        return self.kind.batched

    def batch_size(self, requested: int | None, concurrency: int | None) -> int:
        if requested:
            return requested
        if self.options.get("batch_size") and self.kind.batched:
            return int(self.options["batch_size"])
        return self.kind.default_batch(self, BackendOptions(concurrency=concurrency))

    def pinned_target(self) -> str:
        """The target as pinned: a local folder or file by its absolute path."""
        path = Path(self.target).expanduser()
        return str(path.resolve()) if self.backend != "openai" and path.exists() else self.target

    def settings(self, dtype: str | None) -> dict[str, Any]:
        """What identifies the model's outputs beyond its name; a resumed run must match it."""
        from evalkit.backends import describe

        return describe(self.kind, self, BackendOptions(dtype=dtype))

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
    if model.startswith("scripted:"):
        replies = model.removeprefix("scripted:")
        if not replies:
            raise ConfigError("scripted:<replies.json> needs a replies file")
        return ModelSpec(name=slug(Path(replies).stem), backend="scripted", target=replies)
    configs = list_configs()
    if model in configs:
        path = configs[model]
        try:
            cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: malformed YAML ({exc})") from exc
        backend = cfg.get("backend", "hf")
        target = cfg.get("checkpoint") or cfg.get("model")
        if backend not in BACKENDS or not target:
            raise ConfigError(
                f"{path}: needs backend ({'|'.join(BACKENDS)}) and checkpoint (hf) or model (openai)"
            )
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


def backend_factory(spec: ModelSpec, options: BackendOptions) -> Callable[[], Backend]:
    """A zero-argument constructor, so the model is only loaded when a task has work."""
    kind = spec.kind
    return lambda: kind.build(spec, options)
