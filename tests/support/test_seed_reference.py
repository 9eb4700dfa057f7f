"""Sanity checks of the original-format stand-ins (seed_checkpoints) and the plain-torch reference."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

from tests.support import seed_checkpoints as sc
from tests.support.llava_reference import IMAGE_TOKEN_INDEX, reference_generate, reference_input_ids


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("seed")
    clip = sc.build_clip_tower(root / "clip-vit-large-patch14-336")
    s4v_tower = sc.build_sharegpt4v_tower(root / "ShareGPT4V-7B_Pretrained_vit-large336-l12")
    return {
        "clip": clip,
        "s4v_tower": s4v_tower,
        "v15": sc.build_llava_v15(root / "llava-v1.5-7b", clip),
        "v16": sc.build_llava_v16(root / "llava-v1.6-vicuna-7b", clip),
        "s4v": sc.build_sharegpt4v(root / "ShareGPT4V-7B", s4v_tower),
        "xtuner": sc.build_xtuner(root / "llava-llama-3-8b-v1_1", clip),
    }


def _keys(folder: Path, index: str) -> set[str]:
    return set(json.loads((folder / index).read_text())["weight_map"])


def _names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


RED = Image.new("RGB", (48, 32), (220, 30, 30))
NOISE = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 70, 3), dtype=np.uint8))
TALL = Image.fromarray(np.random.default_rng(1).integers(0, 255, (90, 33, 3), dtype=np.uint8))

CASES = [
    ("llava", "v15", "clip", sc.vicuna_prompt("What is in the image?")),
    ("llava", "v16", "clip", sc.vicuna_prompt("What is in the image?")),
    ("llava", "s4v", "s4v_tower", sc.vicuna_prompt("What colour is the image?")),
    ("xtuner", "xtuner", "clip", sc.llama3_prompt("What is in the image?")),
]


def test_clip_tower_layout(built):
    clip = built["clip"]
    assert _names(clip) == {"config.json", "pytorch_model.bin", "preprocessor_config.json"}
    cfg = json.loads((clip / "config.json").read_text())
    assert cfg["model_type"] == "clip" and {"text_config", "vision_config"} <= cfg.keys()
    state = torch.load(clip / "pytorch_model.bin", weights_only=True)
    assert {"logit_scale", "visual_projection.weight", "text_projection.weight"} <= state.keys()
    assert "vision_model.pre_layrnorm.weight" in state and "text_model.final_layer_norm.weight" in state
    pp = json.loads((clip / "preprocessor_config.json").read_text())
    assert pp["size"] == pp["crop_size"] == sc.TOWER_IMAGE_SIZE and pp["image_mean"] == sc.CLIP_MEAN

    tower = built["s4v_tower"]
    assert json.loads((tower / "config.json").read_text())["model_type"] == "clip_vision_model"
    keys = torch.load(tower / "pytorch_model.bin", weights_only=True).keys()
    assert keys and all(k.startswith("vision_model.") for k in keys)


def test_llava_layouts(built):
    v15 = built["v15"]
    assert {
        "pytorch_model-00001-of-00002.bin",
        "pytorch_model-00002-of-00002.bin",
        "pytorch_model.bin.index.json",
        "tokenizer.model",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "generation_config.json",
        "config.json",
    } <= _names(v15)
    cfg = json.loads((v15 / "config.json").read_text())
    assert cfg["architectures"] == ["LlavaLlamaForCausalLM"] and cfg["model_type"] == "llava"
    assert cfg["mm_vision_tower"] == str(built["clip"]) and cfg["image_aspect_ratio"] == "pad"
    keys = _keys(v15, "pytorch_model.bin.index.json")
    assert {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"} <= keys
    assert {f"model.mm_projector.{i}.{p}" for i in (0, 2) for p in ("weight", "bias")} <= keys
    assert not any("vision_tower" in k for k in keys)
    shard = torch.load(v15 / "pytorch_model-00001-of-00002.bin", weights_only=True)
    assert shard["model.embed_tokens.weight"].dtype == torch.float16

    v16 = built["v16"]
    assert {"model-00001-of-00003.safetensors", "model.safetensors.index.json"} <= _names(v16)
    cfg = json.loads((v16 / "config.json").read_text())
    assert cfg["image_aspect_ratio"] == "anyres" and cfg["mm_patch_merge_type"] == "spatial_unpad"
    assert cfg["image_grid_pinpoints"] == sc.PINPOINTS and cfg["unfreeze_mm_vision_tower"] is True
    keys = _keys(v16, "model.safetensors.index.json")
    assert "model.image_newline" in keys
    assert "model.vision_tower.vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.weight" in keys

    s4v = built["s4v"]
    cfg = json.loads((s4v / "config.json").read_text())
    assert cfg["model_type"] == "share4v" and cfg["architectures"] == ["Share4VLlamaForCausalLM"]
    assert cfg["mm_vision_tower"] == str(built["s4v_tower"])
    assert not any("vision_tower" in k for k in _keys(s4v, "pytorch_model.bin.index.json"))


def test_xtuner_layout(built):
    xt = built["xtuner"]
    assert {
        "projector",
        "visual_encoder_adapter",
        "model.safetensors.index.json",
        "tokenizer.json",
    } <= _names(xt)
    assert json.loads((xt / "config.json").read_text())["architectures"] == ["LlamaForCausalLM"]
    pcfg = json.loads((xt / "projector" / "config.json").read_text())
    assert pcfg["model_type"] == "projector" and "auto_map" in pcfg
    with safe_open(str(xt / "projector" / "model.safetensors"), "pt") as f:
        assert set(f.keys()) == {"model.0.weight", "model.0.bias", "model.2.weight", "model.2.bias"}
    acfg = json.loads((xt / "visual_encoder_adapter" / "adapter_config.json").read_text())
    assert (acfg["r"], acfg["lora_alpha"]) == (64, 16)
    with safe_open(str(xt / "visual_encoder_adapter" / "adapter_model.safetensors"), "pt") as f:
        keys = set(f.keys())
        assert "base_model.model.vision_model.encoder.layers.0.self_attn.q_proj.lora_A.weight" in keys
        assert "base_model.model.vision_model.encoder.layers.2.mlp.fc2.lora_B.weight" in keys
        assert (
            f.get_tensor("base_model.model.vision_model.encoder.layers.0.mlp.fc1.lora_B.weight").abs().sum()
            > 0
        )


def test_tokenizers_load_with_transformers(built):
    from transformers import AutoTokenizer

    for name in ("v15", "v16", "s4v"):
        tok = AutoTokenizer.from_pretrained(built[name])
        assert tok.convert_ids_to_tokens(tok("\nIs").input_ids)[:3] == ["<s>", "▁", "<0x0A>"]
    tok = AutoTokenizer.from_pretrained(built["xtuner"])
    ids = tok("<|start_header_id|>user<|end_header_id|>").input_ids
    assert tok.convert_ids_to_tokens(ids)[:2] == ["<|begin_of_text|>", "<|start_header_id|>"]


def test_reference_input_ids(built):
    ids = reference_input_ids("llava", built["v15"], sc.vicuna_prompt("Is the image red?"))
    assert ids[0] == 1 and ids.count(1) == 1 and ids.count(IMAGE_TOKEN_INDEX) == 1
    after = ids[ids.index(IMAGE_TOKEN_INDEX) + 1 :]
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(built["v15"])
    assert tok.convert_ids_to_tokens(after[:2]) == ["▁", "<0x0A>"]  # the chunk's own dummy prefix (29871)

    ids = reference_input_ids("xtuner", built["xtuner"], sc.llama3_prompt("Is the image red?"))
    tok = AutoTokenizer.from_pretrained(built["xtuner"])
    assert ids[0] == tok.convert_tokens_to_ids("<|begin_of_text|>") and ids.count(ids[0]) == 1
    assert ids.count(IMAGE_TOKEN_INDEX) == 1 and tok.convert_tokens_to_ids("<|eot_id|>") in ids


@pytest.mark.parametrize(("kind", "ckpt", "tower", "prompt"), CASES, ids=[c[1] for c in CASES])
def test_reference_runs_and_sees_the_image(built, kind, ckpt, tower, prompt):
    outs = [reference_generate(kind, built[ckpt], built[tower], im, prompt, 8) for im in (RED, NOISE, TALL)]
    assert all(len(o) >= 4 for o in outs), outs  # no immediate EOS
    assert len({tuple(o) for o in outs}) == 3, outs


def test_xtuner_adapter_matters(built, tmp_path):
    bare = tmp_path / "no-adapter"
    shutil.copytree(built["xtuner"], bare, ignore=shutil.ignore_patterns("visual_encoder_adapter"))
    prompt = sc.llama3_prompt("What is in the image?")
    with_lora = reference_generate("xtuner", built["xtuner"], built["clip"], NOISE, prompt, 8)
    without = reference_generate("xtuner", bare, built["clip"], NOISE, prompt, 8)
    assert with_lora != without


def test_v16_uses_the_tower_inside_the_checkpoint(built, tmp_path):
    other = sc.build_clip_tower(tmp_path / "other-clip", seed=5)
    prompt = sc.vicuna_prompt("What is in the image?")
    a = reference_generate("llava", built["v16"], built["clip"], NOISE, prompt, 8)
    b = reference_generate("llava", built["v16"], other, NOISE, prompt, 8)
    assert a == b  # the tower folder supplies only its config and image processor


def test_preprocessor_forms_agree(built, tmp_path):
    modern = sc.build_clip_tower(tmp_path / "clip-modern", legacy_preprocessor=False)
    v15 = sc.build_llava_v15(tmp_path / "v15-modern", modern)
    prompt = sc.vicuna_prompt("What is in the image?")
    assert reference_generate("llava", v15, modern, TALL, prompt, 8) == reference_generate(
        "llava", built["v15"], built["clip"], TALL, prompt, 8
    )
