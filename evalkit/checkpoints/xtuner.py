"""xtuner's LLaVA format (xtuner/llava-llama-3-8b-v1_1 and the like) in pieces: the language model at the
root, `projector/` (xtuner's ProjectorModel: model.0 Linear, GELU, model.2 Linear), LoRA adapters in
`visual_encoder_adapter/` (on the CLIP tower) and `llm_adapter/` (on the language model), merged here as
PEFT merges them (W + B·A·alpha/r). xtuner's LLaVA takes CLIP hidden state -2 without CLS and pads images
to a square with the image mean, as LLaVA-1.5 does."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from evalkit.checkpoints.detect import Checkpoint, read_json
from evalkit.checkpoints.weights import load_state
from evalkit.checkpoints.writer import Parts, clip_vision_weights
from evalkit.errors import InputError

if TYPE_CHECKING:
    import torch

PROJECTOR_KEYS = {"model.0.weight", "model.0.bias", "model.2.weight", "model.2.bias"}


def merge_lora(state: dict[str, torch.Tensor], adapter: Path, prefix: str) -> dict[str, torch.Tensor]:
    """`state` (names without `prefix`) with the PEFT LoRA adapter in `adapter` merged into its weights."""
    config = read_json(adapter / "adapter_config.json")
    if str(config.get("peft_type", "LORA")).upper() != "LORA":
        raise InputError(f"{adapter}: a {config.get('peft_type')} adapter; only LoRA adapters are merged")
    unsupported = [
        k for k in ("modules_to_save", "use_dora", "rank_pattern", "alpha_pattern") if config.get(k)
    ]
    if config.get("bias", "none") != "none":
        unsupported.append("bias")
    if unsupported:
        raise InputError(
            f"{adapter / 'adapter_config.json'}: {', '.join(unsupported)} not supported in a merge"
        )
    r, alpha = int(config["r"]), float(config["lora_alpha"])
    scale = alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r
    lora = load_state(adapter)
    merged = dict(state)
    pairs = {k.removesuffix(".lora_A.weight") for k in lora if k.endswith(".lora_A.weight")}
    if other := sorted(k for k in lora if not k.endswith((".lora_A.weight", ".lora_B.weight"))):
        raise InputError(f"{adapter}: weights a LoRA merge cannot place ({', '.join(other[:3])})")
    if not pairs:
        raise InputError(f"{adapter}: no lora_A/lora_B weights")
    for stem in sorted(pairs):
        name = stem.removeprefix("base_model.model.").removeprefix(prefix) + ".weight"
        b = lora.get(stem + ".lora_B.weight")
        if b is None or name not in merged:
            raise InputError(f"{adapter}: {stem} has no matching {'lora_B' if b is None else 'base'} weight")
        weight = merged[name]
        delta = (b.float() @ lora[stem + ".lora_A.weight"].float()) * scale
        if config.get("fan_in_fan_out"):
            delta = delta.T
        merged[name] = (weight.float() + delta).to(weight.dtype)
    return merged


def xtuner_parts(ckpt: Checkpoint, tower: Path) -> Parts:
    root = ckpt.path
    projector_state = load_state(root / "projector")
    if set(projector_state) != PROJECTOR_KEYS:
        raise InputError(
            f"{root / 'projector'}: expected the weights {', '.join(sorted(PROJECTOR_KEYS))} "
            f"(a depth-2 ProjectorModel), found {', '.join(sorted(projector_state)[:6])}"
        )
    projector_config = read_json(root / "projector" / "config.json")
    if projector_config.get("hidden_act", "gelu") != "gelu" or projector_config.get("depth", 2) != 2:
        raise InputError(f"{root / 'projector' / 'config.json'}: only depth 2 with gelu is supported")
    llm = load_state(root)
    if (root / "llm_adapter").is_dir():
        llm = merge_lora(llm, root / "llm_adapter", "")
    vision = clip_vision_weights(tower)
    if (root / "visual_encoder_adapter").is_dir():
        vision = merge_lora(vision, root / "visual_encoder_adapter", "")
    config = {k: v for k, v in ckpt.config.items() if k not in ("architectures", "_name_or_path", "auto_map")}
    return Parts(
        source=ckpt,
        llm_config=config,
        llm=llm,
        projector={
            f"linear_{1 if k.split('.')[1] == '0' else 2}.{k.split('.')[2]}": v
            for k, v in projector_state.items()
        },
        vision=vision,
        tower=tower,
        select_layer=-2,
        tokenizer=root,
        image_aspect_ratio="pad",
    )
