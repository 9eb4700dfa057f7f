"""What a checkpoint folder is, read from its small files only (no weight is loaded): transformers, original
LLaVA code (LLaVA-1.5/1.6, ShareGPT4V, xtuner `-hf`, anyone's LLaVA-code training output) or xtuner.

An unknown or incomplete folder is one line naming the folder and what was found, before anything heavy
happens (no default-size model is ever built, no weight is ever silently random-initialised).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.errors import ConfigError, InputError

WEIGHT_FILES = (
    "model.safetensors.index.json",
    "model.safetensors",
    "pytorch_model.bin.index.json",
    "pytorch_model.bin",
)
# The model classes of LLaVA's own code (and ShareGPT4V's copy of it): checkpoints saved by them hold
# `mm_*` keys in a flat language-model config that transformers cannot read.
ORIGINAL_ARCHITECTURES = {
    "LlavaLlamaForCausalLM": "llama",
    "LlavaMistralForCausalLM": "mistral",
    "LlavaQwenForCausalLM": "qwen2",
    "Share4VLlamaForCausalLM": "llama",
}


@dataclass(frozen=True)
class Checkpoint:
    """A local checkpoint folder and what its files say it is."""

    path: Path
    format: str  # transformers | llava | xtuner
    family: str  # transformers: model_type; llava: llava-1.5 | llava-1.6 | share4v; xtuner: xtuner-llava
    config: dict[str, Any] = field(repr=False)
    llm: str = ""  # the language model's type (llama, mistral, qwen2, gemma, ...)
    vocab_size: int = 0
    vision_tower: str | None = None  # original formats: hub id or path of the separate CLIP tower
    remote_code: bool = False  # needs the checkpoint's own Python code (auto_map, unknown model_type)

    @property
    def needs_conversion(self) -> bool:
        return self.format != "transformers"


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object")
    return data


def weight_file(folder: Path) -> Path | None:
    """The folder's weight index or single weight file, preferring safetensors."""
    return next((folder / name for name in WEIGHT_FILES if (folder / name).is_file()), None)


def _found(folder: Path) -> str:
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
    shown = ", ".join(names[:12]) + (f", ... ({len(names)} entries)" if len(names) > 12 else "")
    return shown or "nothing"


def _require_weights(folder: Path, what: str) -> None:
    if weight_file(folder) is None:
        raise InputError(
            f"{folder}: {what} without weights (no {' / '.join(WEIGHT_FILES)}; found: {_found(folder)})"
        )


def _text_config(config: dict[str, Any]) -> dict[str, Any]:
    text = config.get("text_config")
    return text if isinstance(text, dict) else config


def detect(folder: str | Path) -> Checkpoint:
    """Identify a local checkpoint folder from its config files; one-line errors for anything else."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise InputError(f"checkpoint folder not found: {path}")
    config_path = path / "config.json"
    if not config_path.is_file():
        raise InputError(
            f"{path}: not a checkpoint folder (no config.json; found: {_found(path)}); "
            "evalkit reads transformers, original LLaVA / ShareGPT4V and xtuner checkpoints"
        )
    config = read_json(config_path)
    architectures = config.get("architectures") or []
    original = next((ORIGINAL_ARCHITECTURES[a] for a in architectures if a in ORIGINAL_ARCHITECTURES), None)
    if original or "mm_vision_tower" in config or "mm_projector_type" in config:
        return _original(path, config, original or str(config.get("model_type", "llama")))
    if (path / "projector").is_dir():
        return _xtuner(path, config)
    return _transformers(path, config)


def _original(path: Path, config: dict[str, Any], llm: str) -> Checkpoint:
    _require_weights(path, "an original LLaVA checkpoint")
    tower = config.get("mm_vision_tower") or config.get("vision_tower")
    if not tower:
        raise InputError(f"{path / 'config.json'}: an original LLaVA config without mm_vision_tower")
    projector = config.get("mm_projector_type", "linear")
    if projector != "mlp2x_gelu":
        raise ConfigError(
            f"{path / 'config.json'}: mm_projector_type {projector!r} is not supported "
            "(transformers' LLaVA classes hold the mlp2x_gelu projector of LLaVA-1.5 and later)"
        )
    if config.get("mm_use_im_start_end"):
        raise ConfigError(f"{path / 'config.json'}: mm_use_im_start_end checkpoints are not supported")
    anyres = str(config.get("image_aspect_ratio", "")).startswith("anyres")
    if anyres and config.get("mm_patch_merge_type", "flat") != "spatial_unpad":
        merge = config.get("mm_patch_merge_type", "flat")
        raise ConfigError(
            f"{path / 'config.json'}: anyres with mm_patch_merge_type {merge!r} is not supported "
            "(only spatial_unpad, as LLaVA-1.6)"
        )
    family = "llava-1.6" if anyres else "llava-1.5"
    if config.get("model_type") == "share4v":
        family = "share4v"
    return Checkpoint(
        path,
        "llava",
        family,
        config,
        llm=llm,
        vocab_size=int(config.get("vocab_size", 0)),
        vision_tower=tower,
    )


def _xtuner(path: Path, config: dict[str, Any]) -> Checkpoint:
    projector = path / "projector"
    if not (projector / "config.json").is_file():
        raise InputError(f"{projector}: an xtuner projector folder without config.json")
    _require_weights(projector, "an xtuner projector")
    _require_weights(path, "an xtuner checkpoint's language model")
    return Checkpoint(
        path,
        "xtuner",
        "xtuner-llava",
        config,
        llm=str(config.get("model_type", "")),
        vocab_size=int(config.get("vocab_size", 0)),
        vision_tower=None,
    )


def _transformers(path: Path, config: dict[str, Any]) -> Checkpoint:
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    model_type = str(config.get("model_type", ""))
    remote = "auto_map" in config and model_type not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES
    if not model_type:
        raise InputError(f"{path / 'config.json'}: no model_type; not a transformers checkpoint")
    if model_type not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES and not remote:
        architectures = ", ".join(config.get("architectures") or []) or model_type
        raise InputError(
            f"{path}: {architectures} is not an image-text-to-text model transformers knows "
            "(a language model alone? an xtuner checkpoint needs its projector/ folder)"
        )
    _require_weights(path, f"a {model_type} checkpoint")
    text = _text_config(config)
    return Checkpoint(
        path,
        "transformers",
        model_type,
        config,
        llm=str(text.get("model_type", "")),
        vocab_size=int(text.get("vocab_size", 0) or 0),
        remote_code=remote,
    )
