"""Tiny offline stand-ins for original LLaVA-family checkpoints, in the real repositories' file layout.

Every builder writes random, seeded weights under the key names and file names that the real releases use,
so a converter from these formats can be tested without the network:

* ``build_clip_tower``      - openai/clip-vit-large-patch14-336 (a whole ``CLIPModel``, ``pytorch_model.bin``)
* ``build_sharegpt4v_tower`` - Lin-Chen/ShareGPT4V-7B_Pretrained_vit-large336-l12 (a ``CLIPVisionModel``)
* ``build_llama_tokenizer`` - the sentencepiece LLaMA/Vicuna tokenizer files (``tokenizer.model`` + json)
* ``build_llava_v15``       - liuhaotian/llava-v1.5-7b (``pytorch_model-0000N-of-00002.bin``, fp16)
* ``build_llava_v16``       - liuhaotian/llava-v1.6-vicuna-7b (safetensors shards, anyres, tower inside)
* ``build_sharegpt4v``      - Lin-Chen/ShareGPT4V-7B (``share4v``; tower in a separate folder)
* ``build_llama3_tokenizer`` - a byte-level BPE with the Llama-3 special tokens (``tokenizer.json``)
* ``build_xtuner``          - xtuner/llava-llama-3-8b-v1_1 (LLM at the root, ``projector/``,
  ``visual_encoder_adapter/`` with a PEFT LoRA of the CLIP tower)

Sizes: the CLIP tower sees 32 px images in 8 px patches (16 patches + CLS), hidden 64, 3 layers (so that
``mm_vision_select_layer=-2`` leaves one layer unused, as in the real 24-layer tower); the language models
have hidden 64 and 2 layers. Weights are drawn so that greedy decoding is not degenerate (activations of
order one, a peaky ``lm_head``) and depends on the image. Nothing here imports evalkit.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import sentencepiece as spm
import torch
from safetensors.torch import save_file

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "LLAMA3_SPECIAL_TOKENS",
    "PINPOINTS",
    "TOWER_IMAGE_SIZE",
    "TOWER_PATCH_SIZE",
    "VICUNA_SYSTEM",
    "build_clip_tower",
    "build_llama3_tokenizer",
    "build_llama_tokenizer",
    "build_llava_v15",
    "build_llava_v16",
    "build_sharegpt4v",
    "build_sharegpt4v_tower",
    "build_xtuner",
    "llama3_prompt",
    "vicuna_prompt",
]

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
TOWER_IMAGE_SIZE = 32
TOWER_PATCH_SIZE = 8
TOWER_HIDDEN = 64
TOWER_LAYERS = 3
LM_HIDDEN = 64
LM_LAYERS = 2
# llava-v1.6's [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]] (width, height), 336 -> 32.
PINPOINTS = [[32, 64], [64, 32], [64, 64], [96, 32], [32, 96]]

VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
LLAMA3_SPECIAL_TOKENS = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>",
    "<|reserved_special_token_2|>",
    "<|reserved_special_token_3|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|reserved_special_token_4|>",
    "<|eot_id|>",
    *(f"<|reserved_special_token_{i}|>" for i in range(5, 11)),
]
_LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

_QUESTIONS = [
    "What is in the image?",
    "What colour is the image?",
    "Is the image red?",
    "Is this picture blue?",
    "How many objects are there?",
    "Describe the image.",
    "Which one is larger?",
    "Answer the question using a single word or phrase.",
    "Answer with the option's letter from the given choices directly.",
]
_ANSWERS = [
    "Yes",
    "No",
    "Red",
    "Blue",
    "Green",
    "Yellow",
    "A red square on a white background.",
    "There are two cats sitting on a sofa.",
    "The sky is blue and the grass is green.",
    "A B C D 0 1 2 3 4 5 6 7 8 9 10 100",
]


def vicuna_prompt(question: str, system: str = VICUNA_SYSTEM) -> str:
    """LLaVA's ``vicuna_v1`` conversation with one image first, as model_vqa_loader builds it."""
    return f"{system} USER: <image>\n{question} ASSISTANT:"


def llama3_prompt(question: str) -> str:
    """xtuner's ``llama3_chat`` INSTRUCTION around ``<image>\\n{question}``, as VLMEvalKit's LLaVA_XTuner."""
    return (
        "<|start_header_id|>user<|end_header_id|>\n\n<image>\n"
        f"{question}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    )


# ----------------------------------------------------------------------------------------------- helpers


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


class _Draw:
    """Seeded random tensors (one generator, so the order of draws fixes every value)."""

    def __init__(self, seed: int) -> None:
        self.gen = torch.Generator().manual_seed(seed)

    def normal(self, *shape: int, std: float = 1.0, mean: float = 0.0) -> torch.Tensor:
        return torch.randn(*shape, generator=self.gen) * std + mean

    def linear(self, out_features: int, in_features: int, gain: float = 1.0) -> torch.Tensor:
        return self.normal(out_features, in_features, std=gain / math.sqrt(in_features))

    def norm_weight(self, n: int) -> torch.Tensor:
        # Not all ones: a converter that drops or swaps a norm must change the output.
        return self.normal(n, std=0.1, mean=1.0)

    def bias(self, n: int) -> torch.Tensor:
        return self.normal(n, std=0.1)


def _cast(state: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in state.items()}


def _split(keys: list[str], n: int) -> list[list[str]]:
    size = math.ceil(len(keys) / n)
    return [keys[i * size : (i + 1) * size] for i in range(n)]


def _nbytes(state: dict[str, torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in state.values())


def _save_bin_shards(out: Path, state: dict[str, torch.Tensor], n: int) -> None:
    """``pytorch_model-0000i-of-0000n.bin`` + ``pytorch_model.bin.index.json`` (transformers 4.31 layout)."""
    weight_map = {}
    for i, keys in enumerate(_split(list(state), n), start=1):
        name = f"pytorch_model-{i:05d}-of-{n:05d}.bin"
        torch.save({k: state[k] for k in keys}, out / name)
        weight_map.update(dict.fromkeys(keys, name))
    _write_json(
        out / "pytorch_model.bin.index.json",
        {"metadata": {"total_size": _nbytes(state)}, "weight_map": weight_map},
    )


def _save_safetensors_shards(out: Path, state: dict[str, torch.Tensor], n: int) -> None:
    """``model-0000i-of-0000n.safetensors`` + ``model.safetensors.index.json``."""
    weight_map = {}
    for i, keys in enumerate(_split(list(state), n), start=1):
        name = f"model-{i:05d}-of-{n:05d}.safetensors"
        save_file({k: state[k] for k in keys}, str(out / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(keys, name))
    _write_json(
        out / "model.safetensors.index.json",
        {"metadata": {"total_size": _nbytes(state)}, "weight_map": weight_map},
    )


# ------------------------------------------------------------------------------------------- CLIP tower


def _vision_config() -> dict[str, Any]:
    return {
        "attention_dropout": 0.0,
        "dropout": 0.0,
        "hidden_act": "quick_gelu",
        "hidden_size": TOWER_HIDDEN,
        "image_size": TOWER_IMAGE_SIZE,
        "initializer_factor": 1.0,
        "initializer_range": 0.02,
        "intermediate_size": 2 * TOWER_HIDDEN,
        "layer_norm_eps": 1e-05,
        "model_type": "clip_vision_model",
        "num_attention_heads": 4,
        "num_channels": 3,
        "num_hidden_layers": TOWER_LAYERS,
        "patch_size": TOWER_PATCH_SIZE,
        "projection_dim": 32,
    }


def _text_config() -> dict[str, Any]:
    return {
        "attention_dropout": 0.0,
        "bos_token_id": 0,
        "dropout": 0.0,
        "eos_token_id": 2,
        "hidden_act": "quick_gelu",
        "hidden_size": 32,
        "initializer_factor": 1.0,
        "initializer_range": 0.02,
        "intermediate_size": 64,
        "layer_norm_eps": 1e-05,
        "max_position_embeddings": 16,
        "model_type": "clip_text_model",
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "pad_token_id": 1,
        "projection_dim": 32,
        "vocab_size": 99,
    }


def _encoder_layers(d: _Draw, prefix: str, hidden: int, inner: int, layers: int) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = {}
    for i in range(layers):
        p = f"{prefix}.encoder.layers.{i}."
        for proj in ("k_proj", "v_proj", "q_proj", "out_proj"):
            state[f"{p}self_attn.{proj}.weight"] = d.linear(hidden, hidden)
            state[f"{p}self_attn.{proj}.bias"] = d.bias(hidden)
        state[f"{p}layer_norm1.weight"] = d.norm_weight(hidden)
        state[f"{p}layer_norm1.bias"] = d.bias(hidden)
        state[f"{p}mlp.fc1.weight"] = d.linear(inner, hidden)
        state[f"{p}mlp.fc1.bias"] = d.bias(inner)
        state[f"{p}mlp.fc2.weight"] = d.linear(hidden, inner)
        state[f"{p}mlp.fc2.bias"] = d.bias(hidden)
        state[f"{p}layer_norm2.weight"] = d.norm_weight(hidden)
        state[f"{p}layer_norm2.bias"] = d.bias(hidden)
    return state


def _clip_vision_state(d: _Draw, with_position_ids: bool) -> dict[str, torch.Tensor]:
    """``vision_model.*`` of a CLIP vision transformer (note CLIP's own spelling ``pre_layrnorm``)."""
    cfg = _vision_config()
    hidden, patch = cfg["hidden_size"], cfg["patch_size"]
    positions = (cfg["image_size"] // patch) ** 2 + 1
    state = {
        "vision_model.embeddings.class_embedding": d.normal(hidden),
        "vision_model.embeddings.patch_embedding.weight": d.normal(
            hidden, 3, patch, patch, std=1 / math.sqrt(3 * patch * patch)
        ),
        "vision_model.embeddings.position_embedding.weight": d.normal(positions, hidden, std=0.5),
    }
    if with_position_ids:  # a persistent buffer in checkpoints saved before transformers 4.31
        state["vision_model.embeddings.position_ids"] = torch.arange(positions).unsqueeze(0)
    state["vision_model.pre_layrnorm.weight"] = d.norm_weight(hidden)
    state["vision_model.pre_layrnorm.bias"] = d.bias(hidden)
    state.update(
        _encoder_layers(d, "vision_model", hidden, cfg["intermediate_size"], cfg["num_hidden_layers"])
    )
    state["vision_model.post_layernorm.weight"] = d.norm_weight(hidden)
    state["vision_model.post_layernorm.bias"] = d.bias(hidden)
    return state


def _clip_text_state(d: _Draw) -> dict[str, torch.Tensor]:
    cfg = _text_config()
    hidden = cfg["hidden_size"]
    state = {
        "text_model.embeddings.token_embedding.weight": d.normal(cfg["vocab_size"], hidden, std=0.5),
        "text_model.embeddings.position_embedding.weight": d.normal(
            cfg["max_position_embeddings"], hidden, std=0.5
        ),
        "text_model.embeddings.position_ids": torch.arange(cfg["max_position_embeddings"]).unsqueeze(0),
    }
    state.update(_encoder_layers(d, "text_model", hidden, cfg["intermediate_size"], cfg["num_hidden_layers"]))
    state["text_model.final_layer_norm.weight"] = d.norm_weight(hidden)
    state["text_model.final_layer_norm.bias"] = d.bias(hidden)
    return state


def _preprocessor_config(legacy: bool) -> dict[str, Any]:
    if legacy:  # the openai/clip-vit-* repositories still ship the CLIPFeatureExtractor-era file
        return {
            "crop_size": TOWER_IMAGE_SIZE,
            "do_center_crop": True,
            "do_normalize": True,
            "do_resize": True,
            "feature_extractor_type": "CLIPFeatureExtractor",
            "image_mean": CLIP_MEAN,
            "image_std": CLIP_STD,
            "resample": 3,
            "size": TOWER_IMAGE_SIZE,
        }
    return {
        "crop_size": {"height": TOWER_IMAGE_SIZE, "width": TOWER_IMAGE_SIZE},
        "do_center_crop": True,
        "do_convert_rgb": True,
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "image_mean": CLIP_MEAN,
        "image_processor_type": "CLIPImageProcessor",
        "image_std": CLIP_STD,
        "resample": 3,
        "rescale_factor": 1 / 255,
        "size": {"shortest_edge": TOWER_IMAGE_SIZE},
    }


def build_clip_tower(out_dir: Path, seed: int = 0, legacy_preprocessor: bool = True) -> Path:
    """A tiny CLIP in the layout of openai/clip-vit-large-patch14-336.

    Writes ``config.json`` (a full ``CLIPModel``: ``model_type`` "clip", ``text_config`` + ``vision_config``),
    ``pytorch_model.bin`` (the whole model's state dict: ``vision_model.*``, ``text_model.*``,
    ``visual_projection.weight``, ``text_projection.weight``, ``logit_scale`` and the old persistent
    ``*.embeddings.position_ids`` buffers) and ``preprocessor_config.json``: by default the form the openai
    repositories ship (``feature_extractor_type`` "CLIPFeatureExtractor", integer ``size`` and ``crop_size``,
    no ``rescale_factor``); ``legacy_preprocessor=False`` writes a current ``CLIPImageProcessor`` file
    (``size`` {"shortest_edge": N}, ``crop_size`` {"height", "width"}, ``rescale_factor`` 1/255).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    d = _Draw(seed)
    state = _clip_text_state(d)
    state.update(_clip_vision_state(d, with_position_ids=True))
    state["visual_projection.weight"] = d.linear(32, TOWER_HIDDEN)
    state["text_projection.weight"] = d.linear(32, 32)
    state["logit_scale"] = torch.tensor(2.6592)
    torch.save(state, out / "pytorch_model.bin")
    _write_json(
        out / "config.json",
        {
            "_name_or_path": "openai/clip-vit-large-patch14-336",
            "architectures": ["CLIPModel"],
            "initializer_factor": 1.0,
            "logit_scale_init_value": 2.6592,
            "model_type": "clip",
            "projection_dim": 32,
            "text_config": _text_config(),
            "torch_dtype": "float32",
            "transformers_version": "4.21.3",
            "vision_config": _vision_config(),
        },
    )
    _write_json(out / "preprocessor_config.json", _preprocessor_config(legacy_preprocessor))
    return out


def build_sharegpt4v_tower(out_dir: Path, seed: int = 1) -> Path:
    """The ShareGPT4V vision encoder folder (Lin-Chen/ShareGPT4V-7B_Pretrained_vit-large336-l12).

    ShareGPT4V's train.py saves ``image_processor.save_pretrained``, ``vision_model.config.save_pretrained``
    (a ``CLIPVisionConfig``: ``model_type`` "clip_vision_model", no text part) and
    ``torch.save(vision_tower.named_parameters())`` of the ``CLIPVisionModel`` -> keys ``vision_model.*``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    d = _Draw(seed)
    torch.save(_clip_vision_state(d, with_position_ids=False), out / "pytorch_model.bin")
    cfg = {"_name_or_path": "openai/clip-vit-large-patch14-336", "architectures": ["CLIPVisionModel"]}
    cfg.update(_vision_config())
    cfg.update({"torch_dtype": "float32", "transformers_version": "4.31.0"})
    _write_json(out / "config.json", cfg)
    _write_json(out / "preprocessor_config.json", _preprocessor_config(legacy=False))
    return out


# ------------------------------------------------------------------------------- sentencepiece tokenizer


def _chat_corpus() -> list[str]:
    lines = [VICUNA_SYSTEM, "USER: ASSISTANT: USER: ASSISTANT:"]
    lines += [f"USER: {q} ASSISTANT: {a}" for q in _QUESTIONS for a in _ANSWERS]
    lines += ["The quick brown fox jumps over the lazy dog.", "Hello, world! It's a photo of a dog."]
    return lines * 3


def _added_token(content: str) -> dict[str, Any]:
    return {
        "__type": "AddedToken",
        "content": content,
        "lstrip": False,
        "normalized": False,
        "rstrip": False,
        "single_word": False,
    }


def build_llama_tokenizer(out_dir: Path, vocab_size: int = 400, style: str = "v1.5") -> Path:
    """A real sentencepiece BPE model (LLaMA's settings: byte fallback, dummy prefix, identity
    normalisation, unk 0 / bos 1 / eos 2, no pad) plus the json files the LLaVA releases ship.

    ``style`` "v1.5": transformers-4.31 files as in liuhaotian/llava-v1.5-7b (AddedToken dicts with
    ``__type``, ``pad_token`` null in tokenizer_config.json and "<unk>" in special_tokens_map.json,
    ``legacy`` false, ``model_max_length`` 2048, ``padding_side`` "right"); "v1.6": transformers-4.36 files
    (``added_tokens_decoder``, ``pad_token`` "<unk>", ``model_max_length`` 4096).
    Newlines are kept out of the training text, so "\\n" is byte-encoded as <0x0A> and "\\nIs" at the start of
    a text tokenizes as ['▁', '<0x0A>', ...], LLaMA's 29871 effect.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_chat_corpus()),
        model_writer=model,
        model_type="bpe",
        vocab_size=vocab_size,
        byte_fallback=True,
        add_dummy_prefix=True,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        split_digits=True,
        allow_whitespace_only_pieces=True,
        character_coverage=1.0,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        num_threads=1,
        minloglevel=2,
    )
    (out / "tokenizer.model").write_bytes(model.getvalue())
    if style == "v1.5":
        config: dict[str, Any] = {
            "add_bos_token": True,
            "add_eos_token": False,
            "bos_token": _added_token("<s>"),
            "clean_up_tokenization_spaces": False,
            "eos_token": _added_token("</s>"),
            "legacy": False,
            "model_max_length": 2048,
            "pad_token": None,
            "padding_side": "right",
            "sp_model_kwargs": {},
            "tokenizer_class": "LlamaTokenizer",
            "unk_token": _added_token("<unk>"),
        }
        special = {
            "bos_token": {k: v for k, v in _added_token("<s>").items() if k != "__type"},
            "eos_token": {k: v for k, v in _added_token("</s>").items() if k != "__type"},
            "pad_token": "<unk>",
            "unk_token": {k: v for k, v in _added_token("<unk>").items() if k != "__type"},
        }
    elif style == "v1.6":
        decoder = {
            str(i): {**{k: v for k, v in _added_token(t).items() if k != "__type"}, "special": True}
            for i, t in enumerate(["<unk>", "<s>", "</s>"])
        }
        config = {
            "add_bos_token": True,
            "add_eos_token": False,
            "added_tokens_decoder": decoder,
            "bos_token": "<s>",
            "clean_up_tokenization_spaces": False,
            "eos_token": "</s>",
            "legacy": False,
            "model_max_length": 4096,
            "pad_token": "<unk>",
            "padding_side": "right",
            "sp_model_kwargs": {},
            "spaces_between_special_tokens": False,
            "tokenizer_class": "LlamaTokenizer",
            "unk_token": "<unk>",
            "use_default_system_prompt": False,
        }
        special = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<unk>", "unk_token": "<unk>"}
    else:
        raise ValueError(f"unknown tokenizer style {style!r}")
    _write_json(out / "tokenizer_config.json", config)
    _write_json(out / "special_tokens_map.json", special)
    return out


def _sp_vocab_size(folder: Path) -> int:
    return spm.SentencePieceProcessor(model_file=str(folder / "tokenizer.model")).get_piece_size()


# ------------------------------------------------------------------------------------- language models


def _llama_state(
    d: _Draw, vocab: int, hidden: int, layers: int, heads: int, kv_heads: int, inv_freq_theta: float | None
) -> dict[str, torch.Tensor]:
    """``model.embed_tokens``, ``model.layers.N.*``, ``model.norm``, ``lm_head`` of a LlamaForCausalLM."""
    head_dim = hidden // heads
    inner = 2 * hidden
    state = {"model.embed_tokens.weight": d.normal(vocab, hidden)}
    for i in range(layers):
        p = f"model.layers.{i}."
        state[f"{p}self_attn.q_proj.weight"] = d.linear(heads * head_dim, hidden)
        state[f"{p}self_attn.k_proj.weight"] = d.linear(kv_heads * head_dim, hidden)
        state[f"{p}self_attn.v_proj.weight"] = d.linear(kv_heads * head_dim, hidden)
        state[f"{p}self_attn.o_proj.weight"] = d.linear(hidden, heads * head_dim)
        if inv_freq_theta is not None:  # persistent in checkpoints of transformers <= 4.30
            exponents = torch.arange(0, head_dim, 2).float() / head_dim
            state[f"{p}self_attn.rotary_emb.inv_freq"] = 1.0 / (inv_freq_theta**exponents)
        state[f"{p}mlp.gate_proj.weight"] = d.linear(inner, hidden)
        state[f"{p}mlp.up_proj.weight"] = d.linear(inner, hidden)
        state[f"{p}mlp.down_proj.weight"] = d.linear(hidden, inner)
        state[f"{p}input_layernorm.weight"] = d.norm_weight(hidden)
        state[f"{p}post_attention_layernorm.weight"] = d.norm_weight(hidden)
    state["model.norm.weight"] = d.norm_weight(hidden)
    # A peaky head: greedy decoding follows the input instead of drifting on near-ties.
    state["lm_head.weight"] = d.linear(vocab, hidden, gain=4.0)
    return state


def _vicuna_llama_config(vocab: int) -> dict[str, Any]:
    return {
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_act": "silu",
        "hidden_size": LM_HIDDEN,
        "initializer_range": 0.02,
        "intermediate_size": 2 * LM_HIDDEN,
        "max_position_embeddings": 4096,
        "num_attention_heads": 4,
        "num_hidden_layers": LM_LAYERS,
        "num_key_value_heads": 4,
        "pad_token_id": 0,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": None,
        "tie_word_embeddings": False,
        "use_cache": True,
        "vocab_size": vocab,
    }


def _mm_projector(d: _Draw, prefix: str, visual: int, hidden: int) -> dict[str, torch.Tensor]:
    """mlp2x_gelu: ``{prefix}0`` Linear(visual, hidden), GELU, ``{prefix}2`` Linear(hidden, hidden)."""
    return {
        f"{prefix}0.weight": d.linear(hidden, visual),
        f"{prefix}0.bias": d.bias(hidden),
        f"{prefix}2.weight": d.linear(hidden, hidden),
        f"{prefix}2.bias": d.bias(hidden),
    }


def _vicuna_generation_config() -> dict[str, Any]:
    return {
        "bos_token_id": 1,
        "eos_token_id": 2,
        "max_length": 4096,
        "pad_token_id": 0,
        "transformers_version": "4.31.0",
    }


def _tower_hidden(tower: Path) -> int:
    cfg = json.loads((Path(tower) / "config.json").read_text())
    return cfg.get("vision_config", cfg)["hidden_size"]


def build_llava_v15(out_dir: Path, tower: Path, seed: int = 0, inv_freq: bool = False) -> Path:
    """liuhaotian/llava-v1.5-7b, as its own code (release 44e0562) saved it.

    config.json: a flat Llama config plus the ``mm_*`` keys llava/train/train.py and llava_arch.py set
    (``architectures`` ["LlavaLlamaForCausalLM"], ``model_type`` "llava" - the class attribute before the
    1.6 release renamed it "llava_llama" -, ``mm_vision_tower`` = str(tower), ``mm_projector_type``
    "mlp2x_gelu", ``mm_vision_select_layer`` -2, ``mm_vision_select_feature`` "patch", ``image_aspect_ratio``
    "pad", ``image_grid_pinpoints`` null, no ``rope_theta``); fp16 weights in
    ``pytorch_model-0000{1,2}-of-00002.bin`` + ``pytorch_model.bin.index.json``:
    ``model.embed_tokens.weight``, ``model.layers.N.*``, ``model.norm.weight``, ``lm_head.weight``,
    ``model.mm_projector.{0,2}.{weight,bias}`` and no vision tower; the sentencepiece tokenizer files and
    generation_config.json.
    ``inv_freq`` adds ``model.layers.N.self_attn.rotary_emb.inv_freq`` buffers (older checkpoints hold them).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    build_llama_tokenizer(out, style="v1.5")
    vocab = _sp_vocab_size(out)
    d = _Draw(seed)
    state = _llama_state(d, vocab, LM_HIDDEN, LM_LAYERS, 4, 4, 10000.0 if inv_freq else None)
    state.update(_mm_projector(d, "model.mm_projector.", _tower_hidden(tower), LM_HIDDEN))
    _save_bin_shards(out, _cast(state, torch.float16), 2)
    config = {"_name_or_path": "lmsys/vicuna-7b-v1.5", "architectures": ["LlavaLlamaForCausalLM"]}
    config.update(_vicuna_llama_config(vocab))
    config.update(
        {
            "freeze_mm_mlp_adapter": False,
            "image_aspect_ratio": "pad",
            "image_grid_pinpoints": None,
            "mm_hidden_size": _tower_hidden(tower),
            "mm_projector_type": "mlp2x_gelu",
            "mm_use_im_patch_token": False,
            "mm_use_im_start_end": False,
            "mm_vision_select_feature": "patch",
            "mm_vision_select_layer": -2,
            "mm_vision_tower": str(tower),
            "model_type": "llava",
            "torch_dtype": "float16",
            "transformers_version": "4.31.0",
            "tune_mm_mlp_adapter": False,
            "use_mm_proj": True,
        }
    )
    _write_json(out / "config.json", dict(sorted(config.items())))
    _write_json(out / "generation_config.json", _vicuna_generation_config())
    return out


def build_llava_v16(out_dir: Path, tower: Path, seed: int = 0) -> Path:
    """liuhaotian/llava-v1.6-vicuna-7b: anyres + spatial_unpad, with the fine-tuned tower inside.

    config.json as the release (transformers 4.36.2): ``image_aspect_ratio`` "anyres",
    ``image_grid_pinpoints`` scaled to the tiny tower (``PINPOINTS``), ``mm_patch_merge_type``
    "spatial_unpad", ``unfreeze_mm_vision_tower`` true, ``mm_vision_tower_lr``, ``rope_theta``,
    ``tokenizer_model_max_length`` 4096, ``tokenizer_padding_side`` "right", ``model_type`` "llava",
    ``torch_dtype`` "bfloat16". Weights (bf16) in ``model-0000N-of-00003.safetensors`` +
    ``model.safetensors.index.json``: the Llama keys, ``model.mm_projector.{0,2}.*``, ``model.image_newline``
    [hidden] and ``model.vision_tower.vision_tower.vision_model.*`` - tuned tower weights that differ from
    the tower folder's (transformers' convert_llava_next_weights_to_hf.py loads the tower from them).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    build_llama_tokenizer(out, style="v1.6")
    vocab = _sp_vocab_size(out)
    d = _Draw(seed)
    state = _llama_state(d, vocab, LM_HIDDEN, LM_LAYERS, 4, 4, None)
    state.update(_mm_projector(d, "model.mm_projector.", _tower_hidden(tower), LM_HIDDEN))
    state["model.image_newline"] = d.normal(LM_HIDDEN)
    tuned = _clip_vision_state(_Draw(seed + 1000), with_position_ids=False)
    state.update({f"model.vision_tower.vision_tower.{k}": v for k, v in tuned.items()})
    _save_safetensors_shards(out, _cast(state, torch.bfloat16), 3)
    config = {"_name_or_path": "./checkpoints/vicuna-7b-v1-6", "architectures": ["LlavaLlamaForCausalLM"]}
    config.update(_vicuna_llama_config(vocab))
    config.update(
        {
            "attention_bias": False,
            "attention_dropout": 0.0,
            "freeze_mm_mlp_adapter": False,
            "freeze_mm_vision_resampler": False,
            "image_aspect_ratio": "anyres",
            "image_crop_resolution": 224,
            "image_grid_pinpoints": PINPOINTS,
            "image_split_resolution": 224,
            "mm_hidden_size": _tower_hidden(tower),
            "mm_patch_merge_type": "spatial_unpad",
            "mm_projector_lr": None,
            "mm_projector_type": "mlp2x_gelu",
            "mm_resampler_type": None,
            "mm_use_im_patch_token": False,
            "mm_use_im_start_end": False,
            "mm_vision_select_feature": "patch",
            "mm_vision_select_layer": -2,
            "mm_vision_tower": str(tower),
            "mm_vision_tower_lr": 2e-06,
            "model_type": "llava",
            "rope_theta": 10000.0,
            "tokenizer_model_max_length": 4096,
            "tokenizer_padding_side": "right",
            "torch_dtype": "bfloat16",
            "transformers_version": "4.36.2",
            "tune_mm_mlp_adapter": False,
            "tune_mm_vision_resampler": False,
            "unfreeze_mm_vision_tower": True,
            "use_mm_proj": True,
        }
    )
    _write_json(out / "config.json", dict(sorted(config.items())))
    gen = _vicuna_generation_config()
    gen["transformers_version"] = "4.36.2"
    _write_json(out / "generation_config.json", gen)
    return out


def build_sharegpt4v(out_dir: Path, tower: Path, seed: int = 0) -> Path:
    """Lin-Chen/ShareGPT4V-7B: LLaVA-1.5's layout under ShareGPT4V's names.

    ``model_type`` "share4v", ``architectures`` ["Share4VLlamaForCausalLM"], ``mm_vision_tower`` = str(tower)
    (a ``build_sharegpt4v_tower`` folder; the release names
    Lin-Chen/ShareGPT4V-7B_Pretrained_vit-large336-l12),
    the config keys share4v/train/train.py sets (``tune_entire_model``, ``tune_vision_tower``,
    ``vision_tower_lr``, ``mm_projector_lr``, ...), ``image_aspect_ratio`` "pad"; weights in
    ``pytorch_model-0000{1,2}-of-00002.bin`` + index with no vision tower keys (its train.py deletes the
    tower before ``save_model``); same keys as LLaVA-1.5, bf16 (training ran in bf16; unverified for the
    release).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    build_llama_tokenizer(out, style="v1.5")
    vocab = _sp_vocab_size(out)
    d = _Draw(seed)
    state = _llama_state(d, vocab, LM_HIDDEN, LM_LAYERS, 4, 4, None)
    state.update(_mm_projector(d, "model.mm_projector.", _tower_hidden(tower), LM_HIDDEN))
    _save_bin_shards(out, _cast(state, torch.bfloat16), 2)
    config = {"_name_or_path": "checkpoints/share4v-7b", "architectures": ["Share4VLlamaForCausalLM"]}
    config.update(_vicuna_llama_config(vocab))
    config.update(
        {
            "freeze_mm_mlp_adapter": False,
            "image_aspect_ratio": "pad",
            "image_grid_pinpoints": None,
            "mm_hidden_size": _tower_hidden(tower),
            "mm_projector_lr": None,
            "mm_projector_type": "mlp2x_gelu",
            "mm_use_im_patch_token": False,
            "mm_use_im_start_end": False,
            "mm_vision_select_feature": "patch",
            "mm_vision_select_layer": -2,
            "mm_vision_tower": str(tower),
            "model_type": "share4v",
            "torch_dtype": "bfloat16",
            "transformers_version": "4.31.0",
            "tune_entire_model": False,
            "tune_mm_mlp_adapter": False,
            "tune_vision_tower": False,
            "use_mm_proj": True,
            "vision_tower_lr": None,
        }
    )
    _write_json(out / "config.json", dict(sorted(config.items())))
    _write_json(out / "generation_config.json", _vicuna_generation_config())
    return out


# ---------------------------------------------------------------------------------------------- xtuner


def _llama3_corpus() -> list[str]:
    lines = []
    for q in _QUESTIONS:
        for a in _ANSWERS:
            lines.append(f"user\n\n{q}\nassistant\n\n{a}")
    lines += [VICUNA_SYSTEM, "system user assistant", "The quick brown fox jumps over the lazy dog."]
    return lines * 3


LLAMA3_CHAT_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)


def build_llama3_tokenizer(out_dir: Path, vocab_size: int = 400) -> Path:
    """A byte-level BPE shaped like Meta-Llama-3's ``tokenizer.json``: the Llama-3 split regex + ByteLevel
    pre-tokenizer, ``ignore_merges``, the special tokens appended after the BPE vocabulary in Llama-3's order
    (``<|begin_of_text|>``, ``<|end_of_text|>``, reserved 0-3, ``<|start_header_id|>``,
    ``<|end_header_id|>``, reserved 4, ``<|eot_id|>``, ...), a post-processor that prepends
    ``<|begin_of_text|>``; tokenizer_config.json (``PreTrainedTokenizerFast``, ``added_tokens_decoder``,
    bos/eos, the chat template) and special_tokens_map.json. eos is ``<|end_of_text|>`` as in the
    Meta-Llama-3-8B-Instruct files of April 2024 (later changed to ``<|eot_id|>``).
    """
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
        trainers,
    )

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_LLAMA3_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(_llama3_corpus(), trainer=trainer)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in LLAMA3_SPECIAL_TOKENS])
    bos = "<|begin_of_text|>"
    tok.post_processor = processors.Sequence(
        [
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(
                single=f"{bos} $A",
                pair=f"{bos} $A {bos} $B:1",
                special_tokens=[(bos, tok.token_to_id(bos))],
            ),
        ]
    )
    tok.save(str(out / "tokenizer.json"))
    decoder = {
        str(tok.token_to_id(t)): {
            "content": t,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for t in LLAMA3_SPECIAL_TOKENS
    }
    _write_json(
        out / "tokenizer_config.json",
        {
            "added_tokens_decoder": decoder,
            "bos_token": bos,
            "chat_template": LLAMA3_CHAT_TEMPLATE,
            "clean_up_tokenization_spaces": True,
            "eos_token": "<|end_of_text|>",
            "model_input_names": ["input_ids", "attention_mask"],
            "model_max_length": 1000000000000000019884624838656,
            "padding_side": "right",
            "tokenizer_class": "PreTrainedTokenizerFast",
        },
    )
    _write_json(out / "special_tokens_map.json", {"bos_token": bos, "eos_token": "<|end_of_text|>"})
    return out


def build_xtuner(out_dir: Path, tower: Path, seed: int = 0) -> Path:
    """xtuner/llava-llama-3-8b-v1_1 (``xtuner convert pth_to_hf`` of the full-LLM + ViT-LoRA config).

    Root: the LLM as ``LLaVAModel.to_xtuner_llava`` saves it (``llm.half()`` then ``save_pretrained``):
    LlamaForCausalLM config.json (GQA: 4 heads / 2 kv heads, ``rope_theta`` 500000), fp16
    ``model-0000{1,2}-of-00002.safetensors`` + index, generation_config.json, the Llama-3-style tokenizer.
    ``projector/``: ``ProjectorModel.save_pretrained`` - config.json (``model_type`` "projector",
    ``architectures`` ["ProjectorModel"], ``auto_map``, ``visual_hidden_size``, ``llm_hidden_size``,
    ``depth`` 2, ``hidden_act`` "gelu", ``bias`` true) and model.safetensors with ``model.0.weight/bias``,
    ``model.2.weight/bias`` (the real folder also holds configuration_projector.py and modeling_projector.py,
    omitted here: nothing may run them). ``visual_encoder_adapter/``: PEFT ``save_pretrained`` of the
    LoRA-wrapped CLIPVisionModel - adapter_config.json (r 64, lora_alpha 16, lora_dropout 0.05, bias "none",
    target_modules = every nn.Linear of CLIPVisionModel as xtuner's find_all_linear_names collects them) and
    adapter_model.safetensors with ``base_model.model.vision_model.encoder.layers.N.`` +
    ``{self_attn.{q,k,v,out}_proj,mlp.fc1,mlp.fc2}.lora_{A,B}.weight`` (``lora_B`` non-zero so the
    adapter matters). ``tower`` is the CLIP folder the adapter was trained on
    (openai/clip-vit-large-patch14-336 for the release).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    build_llama3_tokenizer(out)
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    vocab = tok.get_vocab_size()
    bos, eot = tok.token_to_id("<|begin_of_text|>"), tok.token_to_id("<|eot_id|>")
    eos = tok.token_to_id("<|end_of_text|>")
    d = _Draw(seed)
    state = _llama_state(d, vocab, LM_HIDDEN, LM_LAYERS, 4, 2, None)
    _save_safetensors_shards(out, _cast(state, torch.float16), 2)
    _write_json(
        out / "config.json",
        {
            "_name_or_path": "meta-llama/Meta-Llama-3-8B-Instruct",
            "architectures": ["LlamaForCausalLM"],
            "attention_bias": False,
            "attention_dropout": 0.0,
            "bos_token_id": bos,
            "eos_token_id": eos,
            "hidden_act": "silu",
            "hidden_size": LM_HIDDEN,
            "initializer_range": 0.02,
            "intermediate_size": 2 * LM_HIDDEN,
            "max_position_embeddings": 8192,
            "model_type": "llama",
            "num_attention_heads": 4,
            "num_hidden_layers": LM_LAYERS,
            "num_key_value_heads": 2,
            "pretraining_tp": 1,
            "rms_norm_eps": 1e-05,
            "rope_scaling": None,
            "rope_theta": 500000.0,
            "tie_word_embeddings": False,
            "torch_dtype": "float16",
            "transformers_version": "4.40.1",
            "use_cache": True,
            "vocab_size": vocab,
        },
    )
    _write_json(
        out / "generation_config.json",
        {"bos_token_id": bos, "eos_token_id": [eos, eot], "transformers_version": "4.40.1"},
    )

    visual = _tower_hidden(tower)
    projector = out / "projector"
    projector.mkdir(exist_ok=True)
    save_file(
        _mm_projector(d, "model.", visual, LM_HIDDEN),
        str(projector / "model.safetensors"),
        metadata={"format": "pt"},
    )
    _write_json(
        projector / "config.json",
        {
            "architectures": ["ProjectorModel"],
            "auto_map": {
                "AutoConfig": "configuration_projector.ProjectorConfig",
                "AutoModel": "modeling_projector.ProjectorModel",
            },
            "bias": True,
            "depth": 2,
            "hidden_act": "gelu",
            "llm_hidden_size": LM_HIDDEN,
            "model_type": "projector",
            "torch_dtype": "float32",
            "transformers_version": "4.40.1",
            "visual_hidden_size": visual,
        },
    )

    adapter = out / "visual_encoder_adapter"
    adapter.mkdir(exist_ok=True)
    rank, alpha = 64, 16
    tower_cfg = json.loads((Path(tower) / "config.json").read_text())
    vcfg = tower_cfg.get("vision_config", tower_cfg)
    inner = vcfg["intermediate_size"]
    shapes = {  # module -> (in_features, out_features)
        "self_attn.k_proj": (visual, visual),
        "self_attn.v_proj": (visual, visual),
        "self_attn.q_proj": (visual, visual),
        "self_attn.out_proj": (visual, visual),
        "mlp.fc1": (visual, inner),
        "mlp.fc2": (inner, visual),
    }
    lora: dict[str, torch.Tensor] = {}
    for i in range(vcfg["num_hidden_layers"]):
        for module, (fan_in, fan_out) in shapes.items():
            p = f"base_model.model.vision_model.encoder.layers.{i}.{module}"
            lora[f"{p}.lora_A.weight"] = d.linear(rank, fan_in)
            # Trained-looking B (PEFT initialises it to zero): the LoRA delta is about a quarter of the layer.
            lora[f"{p}.lora_B.weight"] = d.linear(fan_out, rank, gain=1.0)
    save_file(lora, str(adapter / "adapter_model.safetensors"), metadata={"format": "pt"})
    _write_json(
        adapter / "adapter_config.json",
        {
            "alpha_pattern": {},
            "auto_mapping": {
                "base_model_class": "CLIPVisionModel",
                "parent_library": "transformers.models.clip.modeling_clip",
            },
            "base_model_name_or_path": "openai/clip-vit-large-patch14-336",
            "bias": "none",
            "fan_in_fan_out": False,
            "inference_mode": True,
            "init_lora_weights": True,
            "layer_replication": None,
            "layers_pattern": None,
            "layers_to_transform": None,
            "loftq_config": {},
            "lora_alpha": alpha,
            "lora_dropout": 0.05,
            "megatron_config": None,
            "megatron_core": "megatron.core",
            "modules_to_save": None,
            "peft_type": "LORA",
            "r": rank,
            "rank_pattern": {},
            "revision": None,
            "target_modules": ["k_proj", "out_proj", "q_proj", "v_proj", "fc2", "fc1"],
            "task_type": None,
            "use_dora": False,
            "use_rslora": False,
        },
    )
    (adapter / "README.md").write_text(
        "---\nlibrary_name: peft\nbase_model: openai/clip-vit-large-patch14-336\n---\n", encoding="utf-8"
    )
    return out
