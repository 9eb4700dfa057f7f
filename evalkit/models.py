"""Resolving MODEL on the command line to a backend: a config name, a checkpoint folder (any format
`evalkit.checkpoints` reads), a Hugging Face hub id, or openai:<id> / vllm:<checkpoint> / scripted:<file>.

Model configs live in `configs/models/<name>.yaml` (or `$EVALKIT_CONFIGS/models/`):
`backend` (hf|openai|vllm), `checkpoint` (folder or hub id) or `model` (endpoint model id), `revision`,
`vision_tower`, `base_url`, `dtype`, `trust_remote_code`, `template` (a named template or `native`),
`stop` (tokens that end a reply), `image_mode` (per protocol), `protocol` (default protocol),
`display_name`, `llm`, `family`, `published` (the record its numbers are compared with); for vllm also
`tensor_parallel_size`, `max_images` (per prompt, default 1), `max_model_len`, `gpu_memory_utilization`.
Command-line options (`--revision`, `--vision-tower`, `--template`, `--trust-remote-code`) override them.

`locate` turns an hf spec into a local folder before anything loads: a hub id is found in the cache (or
downloaded), the folder's format detected from its small files, the vision tower of a checkpoint that
needs converting found, and the content fingerprinted; errors there are one line and cost seconds.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from evalkit.backends import BACKENDS, BackendKind, BackendOptions, get_backend_kind
from evalkit.backends.base import Backend
from evalkit.errors import ConfigError, InputError
from evalkit.templates import NATIVE


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

    def image_mode(self, protocol: str) -> str | None:
        """The config's `image_mode` for a protocol (a mode, or a mapping protocol -> mode); None: the
        protocol's per task."""
        chosen = self.options.get("image_mode")
        if isinstance(chosen, dict):
            chosen = chosen.get(protocol)
        if chosen is not None and chosen not in IMAGE_MODES:
            raise ConfigError(f"image_mode {chosen!r} for {self.name}: one of {', '.join(IMAGE_MODES)}")
        return chosen

    def template(self, protocol_template: str | None = None, own: str = "chat") -> tuple[bool, str | None]:
        """(use the protocol's template?, the one used instead; None: the checkpoint's chat template).

        `template` (config or --template) is used whatever the protocol. Otherwise `trained_template` (the
        config's, else what the checkpoint's files tell) decides: a protocol's named template (llava's
        vicuna_v1) is never put on a model trained with another one, and a protocol that frames prompts
        with the model's training template (`own="trained"`) gets it. Unknown training: the protocol's."""
        if "template" in self.options:
            chosen = self.options["template"]
            return False, None if chosen in (None, NATIVE) else str(chosen)
        trained = self.options.get("trained_template")
        if not self.kind.loads_checkpoint or trained is None:
            return True, None
        if protocol_template is None and own == "chat":
            return True, None
        if trained == protocol_template:
            return True, None
        return False, None if trained == NATIVE else trained


DTYPES = ("auto", "float16", "bfloat16", "float32")
IMAGE_MODES = ("pad", "crop", "native")


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
    if model.startswith("vllm:"):
        checkpoint = model.removeprefix("vllm:")
        if not checkpoint:
            raise ConfigError(
                "vllm:<checkpoint> needs a checkpoint folder or hub id, e.g. vllm:llava-hf/llava-1.5-7b-hf"
            )
        where = Path(checkpoint).expanduser()
        base = where.resolve().name if where.is_dir() else checkpoint.rstrip("/").split("/")[-1]
        return ModelSpec(name=f"{slug(base)}-vllm", backend="vllm", target=checkpoint)
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
    from evalkit.checkpoints.hub import looks_like_hub_id

    if model.startswith(("/", "./", "../", "~")):
        raise InputError(f"checkpoint folder not found: {path}")
    if looks_like_hub_id(model):
        return ModelSpec(name=slug(model.split("/")[-1]), backend="hf", target=model)
    raise ConfigError(
        f"model {model!r} is not a config in {', '.join(dict.fromkeys(str(d) for d in config_dirs()))}, "
        "a checkpoint folder, a hub id (org/name), openai:<model-id> or vllm:<checkpoint>"
    )


def with_overrides(spec: ModelSpec, **overrides: Any) -> ModelSpec:
    """The spec with command-line settings (None: not given) over the config's."""
    given = {k: v for k, v in overrides.items() if v is not None}
    return replace(spec, options={**spec.options, **given}) if given else spec


def locate(spec: ModelSpec) -> ModelSpec:
    """A checkpoint spec (hf, vllm) made local and identified (see the module doc); others as they are.
    The backend's own preflight (a package it needs) comes first, before anything is downloaded."""
    spec.kind.preflight()
    if not spec.kind.loads_checkpoint or "path" in spec.options:
        return spec
    from evalkit.checkpoints import detect, fingerprint, locate_tower, trained_template
    from evalkit.checkpoints.hub import looks_like_hub_id, resolve

    options = dict(spec.options)
    path = Path(spec.target).expanduser()
    if not path.is_dir():
        if not looks_like_hub_id(spec.target):
            raise InputError(f"checkpoint folder not found: {path}")
        path, options["commit"] = resolve(spec.target, options.get("revision"))
    checkpoint = detect(path)
    if checkpoint.remote_code and not options.get("trust_remote_code"):
        raise ConfigError(
            f"{path}: a {checkpoint.family} checkpoint runs its own Python code; review it, then pass "
            "--trust-remote-code (or trust_remote_code: true in the model config)"
        )
    tower = locate_tower(checkpoint, options.get("vision_tower"))
    options.update(
        path=str(path.resolve()),
        format=checkpoint.format,
        family=checkpoint.family,
        content=fingerprint(path) + (f"+{fingerprint(tower)}" if tower else ""),
    )
    options.setdefault("trained_template", trained_template(checkpoint))
    if (
        options["trained_template"] is None
        and "template" not in options
        and checkpoint.llm not in ("llama", "llava")
    ):
        raise ConfigError(  # e.g. a Mistral LLaVA: never the protocol's Vicuna template by default
            f"{path}: a {checkpoint.llm or 'non-Llama'} LLaVA whose conversation template its files do not "
            "tell; give --template NAME (evalkit list templates) or trained_template: in its model config"
        )
    if tower:
        options["vision_tower"] = str(tower)
    return replace(spec, options=options)


def backend_factory(spec: ModelSpec, options: BackendOptions) -> Callable[[], Backend]:
    """A zero-argument constructor, so the model is only loaded when a task has work."""
    kind = spec.kind
    if options.tensor_parallel_size not in (None, 1) and not kind.tensor_parallel:
        raise ConfigError(
            f"--tensor-parallel-size is for the vllm backend ({spec.name} runs on {kind.name}); "
            "for data parallelism start the run with torchrun"
        )
    return lambda: kind.build(spec, options)


def describe_configs() -> list[tuple[str, str, str, str, str]]:
    """(name, family, format, template, checkpoint) of every model config, for `evalkit list models`."""
    rows = []
    for name, path in list_configs().items():
        try:
            cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError):
            rows.append((name, "?", "?", "?", f"malformed: {path}"))
            continue
        target = str(cfg.get("checkpoint") or cfg.get("model") or "")
        if cfg.get("backend", "hf") != "hf":
            target = f"{cfg.get('backend')}: {target}"
        revision = f"@{cfg['revision']}" if cfg.get("revision") else ""
        rows.append(
            (
                name,
                str(cfg.get("family", "")),
                str(cfg.get("format", "transformers" if cfg.get("backend", "hf") == "hf" else "")),
                str(cfg.get("template") or cfg.get("trained_template") or ""),
                target + revision,
            )
        )
    return rows
