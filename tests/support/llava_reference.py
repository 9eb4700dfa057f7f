"""An independent, plain-torch re-statement of what the ORIGINAL code computes at inference.

``kind="llava"``: haotian-liu/LLaVA ``llava/eval/model_vqa_loader.py`` with ``llava/mm_utils.py`` and
``llava/model/llava_arch.py`` (LLaVA-1.5, LLaVA-1.6 anyres/spatial_unpad, and ShareGPT4V, whose code is a
copy of LLaVA-1.5's). ``kind="xtuner"``: VLMEvalKit's ``LLaVA_XTuner.generate_inner`` on an xtuner-format
folder (LLM at the root, ``projector/``, ``visual_encoder_adapter/``).

Everything is read from the original files: weights with ``torch.load(weights_only=True)`` / safetensors,
text with the checkpoint's own ``tokenizer.model`` (sentencepiece, as the slow LlamaTokenizer LLaVA used) or
``tokenizer.json`` (the ``tokenizers`` library, as the fast tokenizer xtuner used). Images are prepared by
hand with PIL + numpy (no transformers image processor). transformers is used only for two building blocks,
``CLIPVisionModel`` (the tower) and ``LlamaForCausalLM`` (the decoder), each built from a config written here
and filled with ``load_state_dict(strict=True)``. The projector, the LoRA delta (added at forward time, never
merged), the feature splicing, anyres tiling / unpadding / image_newline, and the greedy loop are here.

Differences from the original runs, on purpose: float32 on CPU (the originals run fp16 on CUDA), eager
attention, no KV cache (the whole sequence is re-run each step, which gives the same argmax).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import sentencepiece as spm
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file

__all__ = ["IMAGE_TOKEN_INDEX", "reference_generate", "reference_input_ids"]

IMAGE_TOKEN_INDEX = -200  # llava/constants.py and xtuner/utils/constants.py
IMAGE_TOKEN = "<image>"
LLAMA3_STOP_WORDS = ["<|eot_id|>"]  # xtuner PROMPT_TEMPLATE.llama3_chat STOP_WORDS


def reference_generate(
    kind: str,
    checkpoint: Path,
    tower: Path,
    image: Image.Image,
    prompt: str,
    max_new_tokens: int,
    follow: list[int] | None = None,
    tolerance: float = 3e-4,
) -> list[int]:
    """Greedy new token ids of the original pipeline, cut before the first EOS / stop id.

    With ``follow`` (another implementation's greedy ids), a step whose argmax and followed token are
    within ``tolerance`` of each other in logit takes the followed token: the two computations round
    differently (KV cache or not, attention kernels), and a random tiny model has near ties. A step
    where the followed token is clearly not the argmax decodes the reference's own token, so the
    returned ids differ from ``follow`` exactly when the two computations disagree.

    ``prompt`` is the full templated text with one ``<image>``; ``tower`` the CLIP folder named by the
    checkpoint's ``mm_vision_tower`` (for xtuner: the ``--visual-encoder`` the adapter belongs to).
    """
    if prompt.count(IMAGE_TOKEN) != 1:
        raise ValueError(f"the prompt must hold {IMAGE_TOKEN} exactly once")
    checkpoint, tower = Path(checkpoint), Path(tower)
    image = image.convert("RGB")
    if kind == "llava":
        embeds, stop_ids, lm = _llava_inputs(checkpoint, tower, image, prompt)
    elif kind == "xtuner":
        embeds, stop_ids, lm = _xtuner_inputs(checkpoint, tower, image, prompt)
    else:
        raise ValueError(f"unknown kind {kind!r} (llava | xtuner)")
    return _greedy(lm, embeds, max_new_tokens, stop_ids, follow or [], tolerance)


@torch.no_grad()
def reference_logits(
    kind: str, checkpoint: Path, tower: Path, image: Image.Image, prompt: str
) -> torch.Tensor:
    """The original pipeline's logits for the first new token (a check that no argmax tie can pass)."""
    checkpoint, tower = Path(checkpoint), Path(tower)
    inputs = _llava_inputs if kind == "llava" else _xtuner_inputs
    embeds, _, lm = inputs(checkpoint, tower, image.convert("RGB"), prompt)
    return lm(inputs_embeds=embeds[None], use_cache=False).logits[0, -1]


def reference_input_ids(kind: str, checkpoint: Path, prompt: str) -> list[int]:
    """The token ids the original code feeds, with ``IMAGE_TOKEN_INDEX`` where the image goes."""
    checkpoint = Path(checkpoint)
    if kind == "llava":
        return _llava_token_ids(checkpoint, prompt)
    if kind == "xtuner":
        return _xtuner_token_ids(checkpoint, prompt)
    raise ValueError(f"unknown kind {kind!r}")


# ------------------------------------------------------------------------------------------------ files


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _read_file(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        return load_file(str(path))
    return torch.load(path, map_location="cpu", weights_only=True)


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    """All tensors of a folder: a sharded index (safetensors first) or a single file."""
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (folder / index).is_file():
            state: dict[str, torch.Tensor] = {}
            for name in sorted(set(_json(folder / index)["weight_map"].values())):
                state.update(_read_file(folder / name))
            return state
    for single in (
        "model.safetensors",
        "pytorch_model.bin",
        "adapter_model.safetensors",
        "adapter_model.bin",
    ):
        if (folder / single).is_file():
            return _read_file(folder / single)
    raise FileNotFoundError(f"{folder}: no weights")


# ------------------------------------------------------------------------------------------------ image


def _processor_sizes(pp: dict[str, Any]) -> tuple[int, int, int]:
    """(shortest_edge, crop_height, crop_width) from a CLIPImageProcessor / CLIPFeatureExtractor file."""
    size = pp.get("size", 224)
    shortest = size if isinstance(size, int) else size["shortest_edge"]
    crop = pp.get("crop_size", 224)
    crop_h, crop_w = (crop, crop) if isinstance(crop, int) else (crop["height"], crop["width"])
    return shortest, crop_h, crop_w


def _pad_to_square(img: Image.Image, fill: tuple[int, ...]) -> Image.Image:
    """llava/xtuner ``expand2square``: centre the image on a square canvas of its longer side."""
    w, h = img.size
    if w == h:
        return img
    side = max(w, h)
    canvas = Image.new(img.mode, (side, side), fill)
    canvas.paste(img, ((side - w) // 2, (side - h) // 2))
    return canvas


def _clip_pixels(img: Image.Image, pp: dict[str, Any]) -> torch.Tensor:
    """CLIPImageProcessor.preprocess: shortest edge resize (PIL, ``resample``), centre crop (floor
    offsets), rescale (float64 multiply, then float32), normalise. Returns [3, crop_h, crop_w]."""
    shortest, crop_h, crop_w = _processor_sizes(pp)
    img = img.convert("RGB")
    if pp.get("do_resize", True):
        w, h = img.size
        # transformers' get_resize_output_image_size(default_to_square=False): int() of the long side
        size = (shortest, int(shortest * h / w)) if w <= h else (int(shortest * w / h), shortest)
        if size != img.size:
            img = img.resize(size, resample=Image.Resampling(pp.get("resample", 3)))
    arr = np.asarray(img)
    if pp.get("do_center_crop", True):
        h, w = arr.shape[:2]
        if h < crop_h or w < crop_w:
            raise NotImplementedError("crop larger than the resized image")
        top, left = (h - crop_h) // 2, (w - crop_w) // 2
        arr = arr[top : top + crop_h, left : left + crop_w]
    out = arr.astype(np.float32)
    if pp.get("do_rescale", True):
        out = (arr.astype(np.float64) * pp.get("rescale_factor", 1 / 255)).astype(np.float32)
    if pp.get("do_normalize", True):
        mean = np.asarray(pp["image_mean"], dtype=np.float32)
        std = np.asarray(pp["image_std"], dtype=np.float32)
        out = (out - mean) / std
    return torch.from_numpy(np.ascontiguousarray(out.transpose(2, 0, 1)))


def _pick_resolution(size: tuple[int, int], candidates: list[list[int]]) -> tuple[int, int]:
    """mm_utils.select_best_resolution: most of the image kept at the fit scale, then least waste."""
    w0, h0 = size
    best, best_kept, best_waste = None, 0, math.inf
    for w, h in candidates:
        scale = min(w / w0, h / h0)
        kept = min(int(w0 * scale) * int(h0 * scale), w0 * h0)
        waste = w * h - kept
        if kept > best_kept or (kept == best_kept and waste < best_waste):
            best, best_kept, best_waste = (w, h), kept, waste
    assert best is not None
    return best


def _fit_and_pad(img: Image.Image, target: tuple[int, int]) -> Image.Image:
    """mm_utils.resize_and_pad_image: aspect-preserving resize (PIL default filter), centred on black."""
    w0, h0 = img.size
    tw, th = target
    scale_w, scale_h = tw / w0, th / h0  # the same float operations as the original, ceil is sensitive
    if scale_w < scale_h:
        nw, nh = tw, min(math.ceil(h0 * scale_w), th)
    else:
        nw, nh = min(math.ceil(w0 * scale_h), tw), th
    canvas = Image.new("RGB", (tw, th), (0, 0, 0))
    canvas.paste(img.resize((nw, nh)), ((tw - nw) // 2, (th - nh) // 2))
    return canvas


def _anyres_pixels(img: Image.Image, pp: dict[str, Any], pinpoints: list[list[int]]) -> torch.Tensor:
    """mm_utils.process_anyres_image: [base view resized to a square, tiles row by row] -> [n, 3, s, s]."""
    shortest, crop_h, _ = _processor_sizes(pp)
    padded = _fit_and_pad(img, _pick_resolution(img.size, pinpoints))
    tiles = [
        padded.crop((x, y, x + crop_h, y + crop_h))
        for y in range(0, padded.size[1], crop_h)
        for x in range(0, padded.size[0], crop_h)
    ]
    views = [img.resize((shortest, shortest)), *tiles]
    return torch.stack([_clip_pixels(v, pp) for v in views])


# ----------------------------------------------------------------------------------------------- vision


def _vision_config(tower: Path) -> dict[str, Any]:
    cfg = _json(tower / "config.json")
    return cfg["vision_config"] if cfg.get("model_type") == "clip" else cfg


def _clip_vision(tower: Path, state: dict[str, torch.Tensor] | None = None) -> torch.nn.Module:
    """A CLIPVisionModel shaped by the tower's config, filled from ``state`` (``vision_model.*`` keys) or
    from the tower's own weights."""
    from transformers import CLIPVisionConfig, CLIPVisionModel

    vc = _vision_config(tower)
    keys = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "image_size")
    config = CLIPVisionConfig(
        **{k: vc[k] for k in keys},
        patch_size=vc["patch_size"],
        num_channels=vc.get("num_channels", 3),
        hidden_act=vc.get("hidden_act", "quick_gelu"),
        layer_norm_eps=vc.get("layer_norm_eps", 1e-5),
    )
    model = CLIPVisionModel._from_config(config, attn_implementation="eager")
    if state is None:
        state = _weights(tower)
    # transformers 5's CLIPVisionModel holds the transformer at its root, older ones under vision_model.
    strip = not any(k.startswith("vision_model.") for k in model.state_dict())
    own = {
        (k.removeprefix("vision_model.") if strip else k): v.float()
        for k, v in state.items()
        if k.startswith("vision_model.") and "position_ids" not in k
    }
    model.load_state_dict(own, strict=True)
    return model.eval()


def _add_lora(model: torch.nn.Module, adapter: Path) -> None:
    """PEFT LoRA at forward time: y = W x + b + (x A^T) B^T * lora_alpha / r on every adapted Linear."""
    cfg = _json(adapter / "adapter_config.json")
    if cfg.get("peft_type", "LORA") != "LORA" or cfg.get("use_dora") or cfg.get("fan_in_fan_out"):
        raise NotImplementedError(f"{adapter}: only plain LoRA")
    if cfg.get("rank_pattern") or cfg.get("alpha_pattern"):
        raise NotImplementedError(f"{adapter}: per-module ranks")
    r, alpha = cfg["r"], cfg["lora_alpha"]
    scale = alpha / math.sqrt(r) if cfg.get("use_rslora") else alpha / r
    state = _weights(adapter)
    modules = dict(model.named_modules())
    prefix = "base_model.model."
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if not key.startswith(prefix) or ".lora_" not in key:
            raise NotImplementedError(f"{adapter}: unexpected adapter tensor {key}")
        module, rest = key[len(prefix) :].split(".lora_", 1)
        pairs.setdefault(module, {})[rest.split(".")[0]] = value.float()
    targets = set(cfg["target_modules"])
    for original, ab in pairs.items():
        name = original if original in modules else original.removeprefix("vision_model.")
        if name not in modules or name.rsplit(".", 1)[-1] not in targets:
            raise ValueError(f"{adapter}: adapter for {name}, which the tower lacks or is not targeted")
        a, b = ab["A"], ab["B"]

        def hook(_mod, inputs, output, a=a, b=b):
            return output + (inputs[0] @ a.T) @ b.T * scale

        modules[name].register_forward_hook(hook)


@torch.no_grad()
def _tower_features(model: torch.nn.Module, pixels: torch.Tensor, layer: int, feature: str) -> torch.Tensor:
    """CLIPVisionTower.feature_select: hidden_states[layer], CLS dropped for "patch"."""
    hidden = model(pixel_values=pixels, output_hidden_states=True).hidden_states[layer]
    if feature == "patch":
        return hidden[:, 1:]
    if feature == "cls_patch":
        return hidden
    raise ValueError(f"unexpected mm_vision_select_feature {feature!r}")


def _mlp_gelu(x: torch.Tensor, w: dict[str, torch.Tensor], prefix: str) -> torch.Tensor:
    """mlp2x_gelu / xtuner ProjectorModel(depth 2): Linear -> exact (erf) GELU -> Linear."""
    x = F.linear(x, w[f"{prefix}0.weight"].float(), w[f"{prefix}0.bias"].float())
    x = F.gelu(x)
    return F.linear(x, w[f"{prefix}2.weight"].float(), w[f"{prefix}2.bias"].float())


# ------------------------------------------------------------------------------------------------ llava


def _crop_padding(grid: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """llava_arch.unpad_image on [C, H, W]: drop the rows/columns that are letterbox padding."""
    w0, h0 = image_size
    _, h, w = grid.shape
    if w0 / h0 > w / h:
        keep = int(h0 * (w / w0))
        pad = (h - keep) // 2
        return grid[:, pad : h - pad, :]
    keep = int(w0 * (h / h0))
    pad = (w - keep) // 2
    return grid[:, :, pad : w - pad]


def _spatial_unpad(
    feats: torch.Tensor,
    image_size: tuple[int, int],
    pinpoints: list[list[int]],
    tile_px: int,
    side: int,
    newline: torch.Tensor,
) -> torch.Tensor:
    """llava_arch "spatial_unpad" for one image: base tokens, then the tile grid stitched into one feature
    map, letterbox removed, ``image_newline`` appended to every row, read row-major."""
    base, tiles = feats[0], feats[1:]
    best_w, best_h = _pick_resolution(image_size, pinpoints)
    cols, rows = best_w // tile_px, best_h // tile_px
    channels = tiles.shape[-1]
    # [rows, cols, side, side, C] -> [C, rows*side, cols*side]
    grid = tiles.reshape(rows, cols, side, side, channels)
    grid = grid.permute(4, 0, 2, 1, 3).reshape(channels, rows * side, cols * side)
    grid = _crop_padding(grid, image_size)
    column = newline.view(channels, 1, 1).expand(channels, grid.shape[1], 1)
    grid = torch.cat([grid, column], dim=2)
    return torch.cat([base, grid.flatten(1).T], dim=0)


def _sp_ids(sp: spm.SentencePieceProcessor, text: str, bos: int | None) -> list[int]:
    """``tokenizer(text).input_ids`` of LLaVA's slow LlamaTokenizer on plain text."""
    return ([bos] if bos is not None else []) + sp.encode(text)


def _llava_token_ids(checkpoint: Path, prompt: str) -> list[int]:
    """mm_utils.tokenizer_image_token: each chunk tokenized alone (each with BOS); the first chunk's BOS
    kept once; later chunks lose their first token (the BOS); IMAGE_TOKEN_INDEX between chunks."""
    sp = spm.SentencePieceProcessor(model_file=str(checkpoint / "tokenizer.model"))
    tok_cfg = (
        _json(checkpoint / "tokenizer_config.json")
        if (checkpoint / "tokenizer_config.json").is_file()
        else {}
    )
    bos = sp.bos_id() if tok_cfg.get("add_bos_token", True) else None
    chunks = [_sp_ids(sp, c, bos) for c in prompt.split(IMAGE_TOKEN)]
    ids: list[int] = []
    offset = 0
    if chunks and chunks[0] and chunks[0][0] == sp.bos_id():
        offset = 1
        ids.append(chunks[0][0])
    separator = [IMAGE_TOKEN_INDEX] * (offset + 1)
    for i, chunk in enumerate(chunks):
        if i:
            ids.extend(separator[offset:])
        ids.extend(chunk[offset:])
    return ids


def _llava_inputs(
    checkpoint: Path, tower: Path, image: Image.Image, prompt: str
) -> tuple[torch.Tensor, set[int], torch.nn.Module]:
    cfg = _json(checkpoint / "config.json")
    if cfg.get("mm_use_im_start_end") or cfg.get("mm_use_im_patch_token", True):
        raise NotImplementedError("mm_use_im_start_end / mm_use_im_patch_token add tokens at load time")
    state = _weights(checkpoint)
    pp = _json(tower / "preprocessor_config.json")

    # process_images
    aspect = cfg.get("image_aspect_ratio")
    if aspect == "pad":
        fill = tuple(int(x * 255) for x in pp["image_mean"])
        pixels = _clip_pixels(_pad_to_square(image, fill), pp)[None]
    elif aspect == "anyres":
        pixels = _anyres_pixels(image, pp, cfg["image_grid_pinpoints"])
    else:
        pixels = _clip_pixels(image, pp)[None]

    # the tower: the checkpoint's own copy only when the code builds it at init (unfreeze_mm_vision_tower)
    tower_prefix = "model.vision_tower.vision_tower."
    inside = {k[len(tower_prefix) :]: v for k, v in state.items() if k.startswith(tower_prefix)}
    vision = _clip_vision(tower, inside if inside and cfg.get("unfreeze_mm_vision_tower") else None)
    feats = _tower_features(
        vision, pixels, cfg.get("mm_vision_select_layer", -1), cfg.get("mm_vision_select_feature", "patch")
    )
    if cfg.get("mm_projector_type", "linear") != "mlp2x_gelu":
        raise NotImplementedError(f"projector {cfg.get('mm_projector_type')}")
    feats = _mlp_gelu(feats, state, "model.mm_projector.")

    if aspect == "anyres":
        merge = cfg.get("mm_patch_merge_type", "flat")
        if merge == "flat":
            image_embeds = feats.flatten(0, 1)
        elif merge == "spatial_unpad":
            vc = _vision_config(tower)
            side = vc["image_size"] // vc["patch_size"]
            image_embeds = _spatial_unpad(
                feats, image.size, cfg["image_grid_pinpoints"], vc["image_size"], side,
                state["model.image_newline"].float(),
            )  # fmt: skip
        else:
            raise NotImplementedError(f"mm_patch_merge_type {merge}")
    else:
        image_embeds = feats[0]

    lm = _llama(cfg, {k: v for k, v in state.items() if k.startswith(("model.", "lm_head."))})
    ids = _llava_token_ids(checkpoint, prompt)
    embeds = _splice(lm, ids, image_embeds)
    limit = cfg.get("tokenizer_model_max_length")
    if limit is not None:
        embeds = embeds[:limit]
    stop = _eos_ids(cfg, checkpoint)
    return embeds, stop, lm


# ----------------------------------------------------------------------------------------------- xtuner


def _xtuner_token_ids(checkpoint: Path, prompt: str) -> list[int]:
    """LLaVA_XTuner: the first chunk encoded with special tokens (BOS), the others without."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(checkpoint / "tokenizer.json"))
    ids: list[int] = []
    for i, chunk in enumerate(prompt.split(IMAGE_TOKEN)):
        if i:
            ids.append(IMAGE_TOKEN_INDEX)
        ids.extend(tok.encode(chunk, add_special_tokens=(i == 0)).ids)
    return ids


def _xtuner_inputs(
    checkpoint: Path, tower: Path, image: Image.Image, prompt: str
) -> tuple[torch.Tensor, set[int], torch.nn.Module]:
    from tokenizers import Tokenizer

    cfg = _json(checkpoint / "config.json")
    pp = _json(tower / "preprocessor_config.json")
    fill = tuple(int(x * 255) for x in pp["image_mean"])
    pixels = _clip_pixels(_pad_to_square(image, fill), pp)[None]

    vision = _clip_vision(tower)
    adapter = checkpoint / "visual_encoder_adapter"
    if adapter.is_dir():
        _add_lora(vision, adapter)
    feats = _tower_features(vision, pixels, -2, "patch")
    pcfg = _json(checkpoint / "projector" / "config.json")
    if pcfg.get("depth", 2) != 2 or pcfg.get("hidden_act", "gelu") != "gelu" or not pcfg.get("bias", True):
        raise NotImplementedError(f"projector {pcfg}")
    image_embeds = _mlp_gelu(feats, _weights(checkpoint / "projector"), "model.")[0]

    if (checkpoint / "llm_adapter").exists():
        raise NotImplementedError("LLM LoRA adapters")
    lm = _llama(cfg, _weights(checkpoint))
    embeds = _splice(lm, _xtuner_token_ids(checkpoint, prompt), image_embeds)

    # generate(eos_token_id=tokenizer.eos_token_id) + StopWordStoppingCriteria(STOP_WORDS)
    tok = Tokenizer.from_file(str(checkpoint / "tokenizer.json"))
    tok_cfg = _json(checkpoint / "tokenizer_config.json")
    eos = tok_cfg.get("eos_token")
    eos = eos["content"] if isinstance(eos, dict) else eos
    stop = {tok.token_to_id(t) for t in [eos, *LLAMA3_STOP_WORDS] if t and tok.token_to_id(t) is not None}
    return embeds, stop, lm


# ------------------------------------------------------------------------------------- language model


def _eos_ids(cfg: dict[str, Any], checkpoint: Path) -> set[int]:
    ids: set[int] = set()
    sources = [cfg.get("eos_token_id")]
    if (checkpoint / "generation_config.json").is_file():
        sources.append(_json(checkpoint / "generation_config.json").get("eos_token_id"))
    for value in sources:
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list):
            ids.update(value)
    return ids


def _llama(cfg: dict[str, Any], state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """LlamaForCausalLM from the original flat config's Llama keys, filled with the original tensors."""
    from transformers import LlamaConfig, LlamaForCausalLM

    if cfg.get("rope_scaling"):
        raise NotImplementedError("rope_scaling")
    heads = cfg["num_attention_heads"]
    config = LlamaConfig(
        vocab_size=cfg["vocab_size"],
        hidden_size=cfg["hidden_size"],
        intermediate_size=cfg["intermediate_size"],
        num_hidden_layers=cfg["num_hidden_layers"],
        num_attention_heads=heads,
        num_key_value_heads=cfg.get("num_key_value_heads", heads),
        hidden_act=cfg.get("hidden_act", "silu"),
        max_position_embeddings=cfg.get("max_position_embeddings", 2048),
        rms_norm_eps=cfg.get("rms_norm_eps", 1e-6),
        rope_parameters={"rope_type": "default", "rope_theta": float(cfg.get("rope_theta", 10000.0))},
        attention_bias=cfg.get("attention_bias", False),
        mlp_bias=cfg.get("mlp_bias", False),
        tie_word_embeddings=cfg.get("tie_word_embeddings", False),
    )
    model = LlamaForCausalLM._from_config(config, attn_implementation="eager")
    drop = ("model.mm_projector.", "model.vision_tower.", "model.image_newline")
    own = {
        k: v.float()
        for k, v in state.items()
        if not k.startswith(drop) and not k.endswith("rotary_emb.inv_freq")
    }
    model.load_state_dict(own, strict=True)
    return model.eval()


def _splice(lm: torch.nn.Module, ids: list[int], image_embeds: torch.Tensor) -> torch.Tensor:
    """prepare_inputs_labels_for_multimodal: text embeddings with the image features in place of each
    IMAGE_TOKEN_INDEX (one image here)."""
    table = lm.get_input_embeddings().weight
    parts: list[torch.Tensor] = []
    run: list[int] = []
    for token in ids:
        if token == IMAGE_TOKEN_INDEX:
            parts.append(table[torch.tensor(run, dtype=torch.long)])
            parts.append(image_embeds.to(table.dtype))
            run = []
        else:
            run.append(token)
    parts.append(table[torch.tensor(run, dtype=torch.long)])
    return torch.cat(parts, dim=0).detach()


@torch.no_grad()
def _greedy(
    lm: torch.nn.Module,
    embeds: torch.Tensor,
    max_new_tokens: int,
    stop_ids: set[int],
    follow: list[int],
    tolerance: float,
) -> list[int]:
    """Argmax decoding, re-running the whole sequence each step; stops before a stop id."""
    table = lm.get_input_embeddings().weight
    out: list[int] = []
    seq = embeds
    for step in range(max_new_tokens):
        logits = lm(inputs_embeds=seq[None], use_cache=False).logits[0, -1]
        token = int(torch.argmax(logits))
        # the followed sequence's next token (its stop, once it has ended), if within the tolerance
        wanted = follow[step] if step < len(follow) else None
        candidates = [wanted] if wanted is not None else (sorted(stop_ids) if follow else [])
        for candidate in candidates:
            if candidate < logits.shape[0] and float(logits[token] - logits[candidate]) <= tolerance:
                token = candidate
                break
        if token in stop_ids:
            break
        out.append(token)
        seq = torch.cat([seq, table[token][None]], dim=0)
    return out
