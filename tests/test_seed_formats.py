"""Every format the seed checkpoints ship in runs through `evalkit run`, with the outputs of the original
computation: stand-ins with the real repositories' files and keys (tests/support/seed_checkpoints.py),
against a plain-torch implementation of LLaVA's and xtuner's own code on the same weights
(tests/support/llava_reference.py), which shares nothing with evalkit's converter."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from evalkit.backends.base import Request
from evalkit.backends.hf import HFBackend
from evalkit.checkpoints import convert, detect, materialise, trained_template
from evalkit.data.images import expand_to_square
from evalkit.errors import InputError
from evalkit.protocols import SHORT
from evalkit.templates import render_template
from tests.support import seed_checkpoints as sc
from tests.support.fixtures import pope_items, write_pope
from tests.support.llava_reference import reference_generate, reference_input_ids
from tests.test_e2e_openai import evalkit, load_jsonl

MAX_NEW = 128  # POPE's limit under protocol llava


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("seeds")
    clip = sc.build_clip_tower(root / "clip-vit-large-patch14-336")
    s4v_tower = sc.build_sharegpt4v_tower(root / "ShareGPT4V-7B_Pretrained_vit-large336-l12")
    xtuner = sc.build_xtuner(root / "llava-llama-3-8b-v1_1", clip)
    return {
        "clip": clip,
        "s4v_tower": s4v_tower,
        "llava-v1.5": sc.build_llava_v15(root / "llava-v1.5-7b", clip),
        "llava-v1.6": sc.build_llava_v16(root / "llava-v1.6-vicuna-7b", clip),
        "sharegpt4v": sc.build_sharegpt4v(root / "ShareGPT4V-7B", s4v_tower),
        "xtuner": xtuner,
        "xtuner-hf": _xtuner_hf(xtuner, clip, root / "llava-llama-3-8b-v1_1-hf"),
    }


def _xtuner_hf(xtuner: Path, clip: Path, out: Path) -> Path:
    """xtuner's `-hf` upload: LLaVA's code format (LlavaLlamaForCausalLM) around the Llama-3 LLM, the
    projector as model.mm_projector.{0,2}, the CLIP tower with the LoRA merged in, inside the checkpoint."""
    from safetensors.torch import load_file

    out.mkdir()
    llm: dict[str, torch.Tensor] = {}
    for shard in sorted(xtuner.glob("*.safetensors")):
        llm.update(load_file(shard))
    projector = load_file(xtuner / "projector" / "model.safetensors")
    adapter = json.loads((xtuner / "visual_encoder_adapter" / "adapter_config.json").read_text())
    lora = load_file(xtuner / "visual_encoder_adapter" / "adapter_model.safetensors")
    tower = {k: v for k, v in torch.load(clip / "pytorch_model.bin", weights_only=True).items()}
    scale = adapter["lora_alpha"] / adapter["r"]
    for key in [k for k in lora if k.endswith("lora_A.weight")]:
        base = key.removeprefix("base_model.model.").removesuffix(".lora_A.weight") + ".weight"
        delta = lora[key.replace("lora_A", "lora_B")].double() @ lora[key].double() * scale
        tower[base] = (tower[base].double() + delta).to(tower[base].dtype)
    state = dict(llm)
    state.update({f"model.mm_projector.{k.split('.')[1]}.{k.split('.')[2]}": v for k, v in projector.items()})
    state.update(
        {
            f"model.vision_tower.vision_tower.{k}": v  # in its own dtype: the test compares to fp32 rounding
            for k, v in tower.items()
            if k.startswith("vision_model.")
        }
    )
    save_file(
        {k: v.contiguous() for k, v in state.items()}, out / "model.safetensors", metadata={"format": "pt"}
    )
    config = json.loads((xtuner / "config.json").read_text())
    config.update(
        architectures=["LlavaLlamaForCausalLM"],
        model_type="llava",
        mm_vision_tower="openai/clip-vit-large-patch14-336",
        mm_projector_type="mlp2x_gelu",
        mm_vision_select_layer=-2,
        mm_vision_select_feature="patch",
        mm_hidden_size=sc.TOWER_HIDDEN,
        image_aspect_ratio="pad",
        mm_use_im_start_end=False,
        mm_use_im_patch_token=False,
        unfreeze_mm_vision_tower=True,
    )
    (out / "config.json").write_text(json.dumps(config, indent=2))
    for name in (
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "generation_config.json",
    ):
        if (xtuner / name).is_file():
            shutil.copy(xtuner / name, out / name)
    return out


# (format, kind of reference, tower folder to pass, --vision-tower needed, template the model gets)
CASES = {
    "llava-v1.5": ("llava", "clip", False, "vicuna_v1"),
    "llava-v1.6": ("llava", "clip", False, "llava_v1"),
    "sharegpt4v": ("llava", "s4v_tower", False, "vicuna_v1"),
    "xtuner": ("xtuner", "clip", True, "llama3"),
    "xtuner-hf": ("xtuner", "clip", True, "llama3"),
}


def _reference(
    seeds: dict[str, Path], name: str, image: Image.Image, question: str, follow: list[int]
) -> list[int]:
    kind, tower, _, template = CASES[name]
    source = seeds["xtuner"] if name == "xtuner-hf" else seeds[name]
    prompt = render_template(template, question, 1)
    return reference_generate(kind, source, seeds[tower], image, prompt, MAX_NEW, follow=follow)


def _ours(backend: HFBackend, image: Image.Image, question: str, template: str) -> tuple[list[int], str]:
    """evalkit's greedy ids and text for one sample, through the backend's own preparation."""
    shown = expand_to_square(image, backend.pad_colour) if backend.image_mode("pad") == "pad" else image
    prepared = backend.prepare([Request("a", [shown], question, MAX_NEW, template, "llava")])
    inputs, limit, stops = prepared
    out = backend.model.generate(
        **inputs,
        do_sample=False,
        max_new_tokens=limit,
        pad_token_id=backend.pad_id,
        eos_token_id=sorted(stops),
    )
    ids = out[0, inputs["input_ids"].shape[1] :].tolist()
    ids = ids[: next((i for i, t in enumerate(ids) if t in stops), len(ids))]
    [text] = backend.generate(prepared)
    return ids, text


@pytest.mark.parametrize("name", list(CASES))
def test_evalkit_run_equals_the_original_computation(
    seeds: dict[str, Path], name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`evalkit run --model <folder>` converts on the fly and decodes what the authors' code decodes: the
    same greedy tokens, up to float ties (a random tiny model has logits 1e-4 apart; the reference then
    follows evalkit's choice), for every image of the run."""
    _, tower, needs_tower, template = CASES[name]
    data = tmp_path / "data"
    write_pope(data)
    args = ["run", "--model", str(seeds[name]), "--tasks", "pope", "--data-root", str(data)]
    args += ["--output", str(tmp_path / "out"), "--limit", "4", "--batch-size", "1", "--dtype", "float32"]
    if needs_tower:
        args += ["--vision-tower", str(seeds[tower])]
    monkeypatch.setenv("EVALKIT_CACHE", str(tmp_path / "cache"))
    result = evalkit(*args, timeout=600)
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "out" / seeds[name].name / "pope"
    records = load_jsonl(folder / "predictions.jsonl")
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["generation"]["template"] == template and metrics["generation"]["tokenization"] == "llava"
    assert metrics["model_config"]["format"] == detect(seeds[name]).format
    converted = materialise(detect(seeds[name]), seeds[tower])  # the run's conversion, from the cache
    assert metrics["model_config"]["converted"] == str(converted)
    backend = HFBackend(converted, dtype="float32", device="cpu")
    items = {f"{item.split}/{item.question_id}": item for item in pope_items()}
    for record in records:
        image = Image.open(data / "coco" / "val2014" / items[record["id"]].image).convert("RGB")
        ids, text = _ours(backend, image, record["prompt"], template)
        assert record["output"] == text and ids
        assert _reference(seeds, name, image, record["prompt"], follow=ids) == ids, record["id"]


@pytest.mark.parametrize("name", ["llava-v1.5", "sharegpt4v", "xtuner"])
def test_input_ids_are_the_original_tokenization(seeds: dict[str, Path], name: str, tmp_path: Path) -> None:
    """LLaVA's tokenizer_image_token: the chunk after the image starts with the "▁" a Llama tokenizer puts
    before "\\n" (29871 in LLaMA's vocabulary), which the processor's joint tokenization does not."""
    kind, tower, _, template = CASES[name]
    folder = materialise(detect(seeds[name]), seeds[tower])
    backend = HFBackend(folder, dtype="float32", device="cpu")
    prompt = render_template(template, "Is the image red?" + SHORT, 1)
    image = Image.new("RGB", (40, 24), (220, 30, 30))
    request = Request("a", [image], "Is the image red?" + SHORT, 4, template, "llava")
    ids = backend.prepare([request])[0]["input_ids"][0].tolist()
    collapsed = [t for i, t in enumerate(ids) if t != backend.image_token_id or ids[i - 1] != t]
    expected = reference_input_ids(kind, seeds[name], prompt)
    assert collapsed == [backend.image_token_id if t < 0 else t for t in expected]
    joint = backend.prepare([Request("a", [image], request.prompt, 4, template)])[0]["input_ids"][0].tolist()
    if kind == "llava":  # the processor's tokens lack the "▁" after the image: what the protocol changes
        assert len(joint) == len(ids) - 1
    else:  # byte-level BPE has no such token: both agree
        assert joint == ids


def test_convert_command_and_its_record(seeds: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "converted"
    result = evalkit("convert", str(seeds["xtuner"]), "--out", str(out), "--vision-tower", str(seeds["clip"]))
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "evalkit_conversion.json").read_text())
    assert record["format"] == "xtuner" and record["template"] == "llama3"
    assert detect(out).format == "transformers" and trained_template(detect(out)) == "llama3"
    from transformers import AutoTokenizer, GenerationConfig

    eot = AutoTokenizer.from_pretrained(out).convert_tokens_to_ids("<|eot_id|>")
    eos = GenerationConfig.from_pretrained(out).eos_token_id  # a reply ends at <|eot_id|> in every protocol
    assert eot in (eos if isinstance(eos, list) else [eos])
    again = evalkit("convert", str(seeds["xtuner"]), "--out", str(out), "--vision-tower", str(seeds["clip"]))
    assert again.returncode != 0 and again.stderr.strip().endswith("already exists; give a new folder")
    missing = evalkit(
        "convert", str(seeds["xtuner"]), "--out", str(tmp_path / "x"), env={"HF_HUB_OFFLINE": "1"}
    )
    assert missing.returncode != 0 and len(missing.stderr.strip().splitlines()) == 1
    assert "vision tower openai/clip-vit-large-patch14-336 is not in the Hugging Face cache" in missing.stderr


def test_incomplete_original_checkpoint_is_one_line(seeds: dict[str, Path], tmp_path: Path) -> None:
    broken = shutil.copytree(seeds["llava-v1.5"], tmp_path / "broken")
    index = json.loads((broken / "pytorch_model.bin.index.json").read_text())
    shard = sorted(set(index["weight_map"].values()))[-1]
    (broken / shard).unlink()
    with pytest.raises(InputError, match=f"names shard {shard}, which is not in"):
        convert(detect(broken), tmp_path / "out", seeds["clip"])
    assert not (tmp_path / "out").exists()


def test_xtuner_transformers_upload_runs(seeds: dict[str, Path], tmp_path: Path) -> None:
    """xtuner's `-transformers` upload: the transformers LLaVA classes with a processor saved before
    transformers counted image tokens itself (no patch_size)."""
    folder = convert(detect(seeds["xtuner"]), tmp_path / "llava-llama-3-8b-v1_1-transformers", seeds["clip"])
    (folder / "evalkit_conversion.json").unlink()
    processor = json.loads((folder / "processor_config.json").read_text())
    for key in ("patch_size", "vision_feature_select_strategy", "num_additional_image_tokens"):
        processor.pop(key, None)
    (folder / "processor_config.json").write_text(json.dumps(processor))
    assert trained_template(detect(folder)) == "llama3"  # read from the tokenizer's special tokens
    backend = HFBackend(folder, dtype="float32", device="cpu")
    eot = backend.tokenizer.convert_tokens_to_ids("<|eot_id|>")
    assert backend.template_stops("llama3") == {eot} and eot in backend.stop_ids  # a reply ends there
    image = Image.new("RGB", (40, 24), (30, 40, 220))
    ids, _ = _ours(backend, image, "What is it?", "llama3")
    assert _reference(seeds, "xtuner", image, "What is it?", follow=ids) == ids


@pytest.mark.parametrize("name", list(CASES))
def test_first_token_logits_equal_the_original(seeds: dict[str, Path], name: str, tmp_path: Path) -> None:
    """The whole distribution, not only its argmax: evalkit's logits for the first new token equal the
    original computation's to float32 rounding, for a non-square image (padding, anyres tiles)."""
    from tests.support.llava_reference import reference_logits

    kind, tower, _, template = CASES[name]
    source = seeds["xtuner"] if name == "xtuner-hf" else seeds[name]
    backend = HFBackend(materialise(detect(seeds[name]), seeds[tower]), dtype="float32", device="cpu")
    image = Image.new("RGB", (52, 30), (30, 170, 40))
    image.paste((220, 30, 30), (0, 0, 20, 30))
    question = "What colour is the image?" + SHORT
    shown = expand_to_square(image, backend.pad_colour) if backend.image_mode("pad") == "pad" else image
    inputs, _, _ = backend.prepare([Request("a", [shown], question, 1, template, "llava")])
    with torch.no_grad():
        ours = backend.model(**inputs).logits[0, -1]
    theirs = reference_logits(kind, source, seeds[tower], image, render_template(template, question, 1))
    assert ours.shape[0] >= theirs.shape[0]  # the converted vocabulary adds <image> (and a pad token)
    assert torch.allclose(ours[: theirs.shape[0]], theirs, atol=1e-4, rtol=1e-5), (
        (ours[: theirs.shape[0]] - theirs).abs().max()
    )
    added = ours[theirs.shape[0] :]  # the rows conversion added: the mean of the others, never the argmax
    assert added.numel() == 0 or float(added.max()) < float(theirs.max())
