"""Original LLaVA-code and xtuner checkpoints written as transformers LLaVA / LLaVA-NeXT checkpoints, exactly.

What the authors' code computes and what the transformers classes compute agree once the weights are
placed right: CLIP hidden state `mm_vision_select_layer` (-2) without the CLS token
(`vision_feature_select_strategy="default"`), the `mlp2x_gelu` projector (Linear, exact GELU, Linear),
LLaVA-1.6's anyres tiling with `spatial_unpad` and `image_newline`. Only the `<image>` token (and a pad
token where the tokenizer has none) is new; its rows of the output layer are the mean of the others, so
greedy decoding can never pick it (the mean of the logits is never above their maximum).

Weights are assigned into a model built on the meta device: converting needs about the checkpoint's size
in memory, not twice that. Missing or unexpected weights are an error naming them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.checkpoints.detect import Checkpoint, read_json
from evalkit.checkpoints.weights import load_state
from evalkit.errors import ConfigError, InputError

if TYPE_CHECKING:
    import torch

CONVERTER_VERSION = 1
MARKER = "evalkit_conversion.json"  # written next to a converted checkpoint: where it came from, how
IMAGE_TOKEN = "<image>"
# keys of an original LLaVA config that describe the vision part (not the language model)
_NOT_LLM = ("mm_", "image_", "tune_", "freeze_", "unfreeze_", "use_mm", "tokenizer_")
_DROP = {"architectures", "model_type", "_name_or_path", "vision_tower", "transformers_version", "auto_map"}


@dataclass
class Parts:
    """A LLaVA-shaped model in pieces, whatever format it came in."""

    source: Checkpoint
    llm_config: dict[str, Any]  # the language model's config (model_type included)
    llm: dict[str, torch.Tensor]  # causal-LM names: model.*, lm_head.weight
    projector: dict[str, torch.Tensor]  # linear_1.*, linear_2.*
    vision: dict[str, torch.Tensor]  # CLIPVisionModel names: vision_model.*
    tower: Path  # the CLIP folder (config, image processor)
    select_layer: int = -2
    select_feature: str = "patch"
    pinpoints: list[list[int]] | None = None  # anyres (LLaVA-1.6)
    newline: torch.Tensor | None = None
    tokenizer: Path | None = None
    template: str | None = None
    image_aspect_ratio: str = "pad"
    notes: dict[str, Any] = field(default_factory=dict)


def original_parts(ckpt: Checkpoint, tower: Path) -> Parts:
    """The pieces of an original LLaVA-code checkpoint (LLaVA-1.5/1.6, ShareGPT4V, xtuner -hf)."""
    state = load_state(ckpt.path)
    projector = {
        f"linear_{1 if k.split('.')[2] == '0' else 2}.{k.split('.')[-1]}": v
        for k, v in state.items()
        if k.startswith("model.mm_projector.")
    }
    if set(projector) != {"linear_1.weight", "linear_1.bias", "linear_2.weight", "linear_2.bias"}:
        raise InputError(
            f"{ckpt.path}: the weights hold no complete mlp2x_gelu projector (model.mm_projector.0/2 "
            f"weight and bias; found {sorted(k for k in state if 'mm_projector' in k) or 'none'})"
        )
    prefix = "model.vision_tower.vision_tower."
    vision = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
    if not vision:  # the tower was frozen and not saved: the authors' code loads it from mm_vision_tower
        vision = clip_vision_weights(tower)
    llm = {
        k: v
        for k, v in state.items()
        if not k.startswith(("model.mm_projector.", "model.vision_tower.", "model.image_newline"))
    }
    config = ckpt.config
    llm_config = {k: v for k, v in config.items() if not k.startswith(_NOT_LLM) and k not in _DROP}
    llm_config["model_type"] = ckpt.llm if ckpt.llm != "llava" else "llama"
    anyres = ckpt.family == "llava-1.6"
    return Parts(
        source=ckpt,
        llm_config=llm_config,
        llm=llm,
        projector=projector,
        vision=vision,
        tower=tower,
        select_layer=int(config.get("mm_vision_select_layer", -2)),
        select_feature=str(config.get("mm_vision_select_feature", "patch")),
        pinpoints=config.get("image_grid_pinpoints") if anyres else None,
        newline=state.get("model.image_newline"),
        tokenizer=ckpt.path,
        image_aspect_ratio=str(config.get("image_aspect_ratio", "square")),
    )


def clip_vision_weights(tower: Path) -> dict[str, torch.Tensor]:
    """A CLIP (or CLIP vision) checkpoint's vision weights, named as CLIPVisionModel names them."""
    state = load_state(tower)
    vision = {k: v for k, v in state.items() if k.startswith("vision_model.")}
    if not vision:
        raise InputError(f"{tower}: no vision_model.* weights (is it a CLIP checkpoint?)")
    return vision


def vision_config(tower: Path) -> Any:
    from transformers import CLIPVisionConfig

    raw = read_json(tower / "config.json")
    if raw.get("model_type") == "clip":
        raw = raw.get("vision_config") or {}
    elif raw.get("model_type") not in ("clip_vision_model", None):
        raise ConfigError(f"{tower}: a {raw.get('model_type')} vision tower; LLaVA checkpoints use CLIP")
    return CLIPVisionConfig(**{k: v for k, v in raw.items() if k not in ("model_type", "architectures")})


def _tokenizer(parts: Parts) -> Any:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(parts.tokenizer, use_fast=True)
    except (OSError, ValueError, ImportError) as exc:
        raise InputError(
            f"{parts.tokenizer}: the tokenizer does not load ({str(exc).splitlines()[0]})"
        ) from None
    tokenizer.add_tokens([IMAGE_TOKEN], special_tokens=True)
    if tokenizer.pad_token is None:  # LLaVA pads with <unk> where there is one
        if tokenizer.unk_token is not None:
            tokenizer.pad_token = tokenizer.unk_token
        else:
            tokenizer.add_special_tokens({"pad_token": "<pad>"})
    tokenizer.padding_side = "left"
    return tokenizer


def _grow(matrix: torch.Tensor, rows: int) -> torch.Tensor:
    """The matrix with rows appended, each the mean of the existing rows (computed in float32)."""
    import torch

    extra = rows - matrix.shape[0]
    if extra <= 0:
        return matrix
    mean = matrix.float().mean(dim=0, keepdim=True).to(matrix.dtype)
    return torch.cat([matrix, mean.expand(extra, -1)], dim=0)


def _image_processor(parts: Parts) -> Any:
    from transformers import AutoImageProcessor

    base = read_json(parts.tower / "preprocessor_config.json")
    if parts.pinpoints is None:
        return AutoImageProcessor.from_pretrained(parts.tower)
    from transformers import LlavaNextImageProcessor

    keys = ("image_mean", "image_std", "size", "crop_size", "resample", "rescale_factor", "do_convert_rgb")
    return LlavaNextImageProcessor(
        **{k: base[k] for k in keys if k in base}, image_grid_pinpoints=parts.pinpoints, do_pad=True
    )


def _language_config(parts: Parts, vocab: int) -> Any:
    from transformers import CONFIG_MAPPING

    llm = dict(parts.llm_config)
    model_type = llm.pop("model_type")
    if model_type not in CONFIG_MAPPING:
        raise ConfigError(
            f"{parts.source.path}: language model type {model_type!r} is unknown to transformers"
        )
    llm["vocab_size"] = vocab
    return CONFIG_MAPPING[model_type](**llm)


def _generation_config(parts: Parts, tokenizer: Any, stops: tuple[str, ...]) -> Any:
    """The source's generation config (its EOS ids), with the trained template's stop tokens added as EOS
    ids too (LLaVA-Llama-3 ends a reply at <|eot_id|>, whatever EOS its LLM's files name)."""
    from transformers import GenerationConfig

    try:  # only its EOS ids: the source's sampling settings are not ours (evalkit decodes greedily)
        eos = GenerationConfig.from_pretrained(parts.source.path).eos_token_id
    except (OSError, ValueError):
        eos = None
    generation = GenerationConfig()
    ids = list(eos) if isinstance(eos, list) else [eos] if eos is not None else [tokenizer.eos_token_id]
    for stop in stops:
        found = tokenizer.convert_tokens_to_ids(stop)
        if isinstance(found, int) and found >= 0 and found != tokenizer.unk_token_id and found not in ids:
            ids.append(found)
    generation.eos_token_id = ids[0] if len(ids) == 1 else ids
    generation.pad_token_id = tokenizer.pad_token_id
    generation.bos_token_id = tokenizer.bos_token_id
    return generation


def write_transformers(
    parts: Parts, out: Path, chat_template: str | None, stops: tuple[str, ...] = ()
) -> Path:
    """Write `parts` as a transformers LLaVA (or LLaVA-NeXT, for anyres) checkpoint in `out`."""
    import torch
    from transformers import (
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
        LlavaNextProcessor,
        LlavaProcessor,
    )

    if parts.select_feature not in ("patch", "cls_patch"):
        raise ConfigError(
            f"{parts.source.path}: mm_vision_select_feature {parts.select_feature!r} is unknown"
        )
    tokenizer = _tokenizer(parts)
    # the embedding may already hold more rows than the tokenizer has tokens (Phi-3, Qwen2 pad them)
    rows = parts.llm["model.embed_tokens.weight"].shape[0] if "model.embed_tokens.weight" in parts.llm else 0
    vocab = max(len(tokenizer), rows)
    text_config = _language_config(parts, vocab)
    vision = vision_config(parts.tower)
    ids = {
        "image_token_index": tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        "vision_feature_layer": parts.select_layer,
        "vision_feature_select_strategy": "default" if parts.select_feature == "patch" else "full",
        "projector_hidden_act": "gelu",
        "tie_word_embeddings": bool(getattr(text_config, "tie_word_embeddings", False)),
    }
    patches = (vision.image_size // vision.patch_size) ** 2
    if parts.pinpoints is None:
        config = LlavaConfig(vision_config=vision, text_config=text_config, image_seq_length=patches, **ids)
        model_class, processor_class = LlavaForConditionalGeneration, LlavaProcessor
    else:
        config = LlavaNextConfig(
            vision_config=vision, text_config=text_config, image_grid_pinpoints=parts.pinpoints, **ids
        )
        model_class, processor_class = LlavaNextForConditionalGeneration, LlavaNextProcessor
    dtype = next(iter(parts.llm.values())).dtype
    config.dtype = dtype
    with torch.device("meta"):
        model = model_class(config)
    _assign(model, parts, vocab, dtype)
    out.mkdir(parents=True, exist_ok=True)
    model.generation_config = _generation_config(parts, tokenizer, stops)
    model.save_pretrained(out, max_shard_size="5GB")
    processor = processor_class(
        image_processor=_image_processor(parts),
        tokenizer=tokenizer,
        patch_size=vision.patch_size,
        vision_feature_select_strategy=ids["vision_feature_select_strategy"],
        num_additional_image_tokens=1,
        image_token=IMAGE_TOKEN,
        chat_template=chat_template,
    )
    processor.save_pretrained(out)
    return out


def _assign(model: Any, parts: Parts, vocab: int, dtype: torch.dtype) -> None:
    """Load every piece into its submodule (strict: a missing or extra weight is an error naming it)."""
    import torch

    llm = {k.removeprefix("model."): v for k, v in parts.llm.items() if k.startswith("model.")}
    llm["embed_tokens.weight"] = _grow(llm["embed_tokens.weight"], vocab)
    head = parts.llm.get("lm_head.weight")
    if head is None and not model.config.tie_word_embeddings:
        raise InputError(f"{parts.source.path}: no lm_head.weight in the language model's weights")
    vision = parts.vision  # each piece keeps its own dtype: --dtype decides at load, nothing is rounded here
    inner = model.model
    pieces: list[tuple[str, Any, dict[str, Any]]] = [
        ("language model", inner.language_model, llm),
        ("projector", inner.multi_modal_projector, parts.projector),
        ("vision tower", inner.vision_tower, _vision_names(inner.vision_tower, vision)),
    ]
    if head is not None:
        pieces.append(("output layer", model.lm_head, {"weight": _grow(head, vocab)}))
    for what, module, state in pieces:
        _load(module, state, what, parts.source.path)
    if parts.pinpoints is not None:
        if parts.newline is None:
            raise InputError(f"{parts.source.path}: an anyres checkpoint without model.image_newline")
        inner.image_newline = torch.nn.Parameter(parts.newline, requires_grad=False)
    if model.config.tie_word_embeddings:
        model.tie_weights()
    left = [name for name, t in model.state_dict().items() if t.is_meta]
    if left:
        raise InputError(f"{parts.source.path}: no weights for {', '.join(left[:5])}")


def _vision_names(module: Any, state: dict[str, Any]) -> dict[str, Any]:
    """CLIPVisionModel names (vision_model.*) as the tower module names its weights."""
    wanted = next(iter(module.state_dict()), "")
    return (
        state
        if wanted.startswith("vision_model.")
        else {k.removeprefix("vision_model."): v for k, v in state.items()}
    )


# buffers older checkpoints saved that transformers now computes (CLIP position ids, rotary frequencies)
STALE_BUFFERS = (".position_ids", ".inv_freq")


def _load(module: Any, state: dict[str, Any], what: str, source: Path) -> None:
    expected = set(module.state_dict())
    state = {k: v for k, v in state.items() if k in expected or not k.endswith(STALE_BUFFERS)}
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        detail = "; ".join(
            f"{label}: {', '.join(keys[:4])}{' ...' if len(keys) > 4 else ''}"
            for label, keys in (("missing", missing), ("unexpected", unexpected))
            if keys
        )
        raise InputError(f"{source}: the {what}'s weights do not fit ({detail})")
    for name, tensor in state.items():
        if tuple(module.state_dict()[name].shape) != tuple(tensor.shape):
            raise InputError(
                f"{source}: {what} weight {name} has shape {tuple(tensor.shape)}, "
                f"the config says {tuple(module.state_dict()[name].shape)}"
            )
    module.load_state_dict(state, strict=True, assign=True)


def write_marker(out: Path, info: dict[str, Any]) -> None:
    (out / MARKER).write_text(json.dumps({"converter": CONVERTER_VERSION, **info}, indent=2) + "\n", "utf-8")
