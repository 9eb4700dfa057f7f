"""The tiny offline LLaVA: builds, reloads through the Auto classes, batches, and (trained) sees images."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

from evalkit.demo.tiny_model import (
    COLOURS,
    DEFAULT_TRAIN_STEPS,
    VICUNA_SYSTEM,
    build_tiny_llava,
    colour_image,
    colour_question,
    vicuna_v1_prompt,
)


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def _load(path: Path) -> tuple[AutoProcessor, torch.nn.Module]:
    processor = AutoProcessor.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path).eval()
    return processor, model


def _cut_at_eos(ids: list[int], eos: int) -> list[int]:
    return ids[: ids.index(eos) + 1] if eos in ids else ids


def test_build_is_deterministic(tmp_path: Path) -> None:
    a = build_tiny_llava(tmp_path / "a", seed=0)
    b = build_tiny_llava(tmp_path / "b", seed=0)
    c = build_tiny_llava(tmp_path / "c", seed=1)
    for name in ("model.safetensors", "tokenizer.json", "config.json", "processor_config.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "model.safetensors").read_bytes() != (c / "model.safetensors").read_bytes()


def test_processor_matches_model(tmp_path: Path) -> None:
    processor, model = _load(build_tiny_llava(tmp_path / "m"))
    tok = processor.tokenizer
    assert tok.padding_side == "left"
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<s>", "</s>", "<pad>")
    assert 300 <= len(tok) <= 400
    assert tok("Is the image red?")["input_ids"][0] == tok.bos_token_id
    assert tok("Is the image red?", add_special_tokens=False)["input_ids"][0] != tok.bos_token_id

    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Is it red?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    assert text == "USER: <image>\nIs it red? ASSISTANT:"
    with_system = [{"role": "system", "content": VICUNA_SYSTEM}, *messages]
    vicuna = processor.apply_chat_template(with_system, add_generation_prompt=True)
    assert vicuna == vicuna_v1_prompt("Is it red?")

    inputs = processor(text=text, images=colour_image("red", 0), return_tensors="pt")
    assert inputs["pixel_values"].shape == (1, 3, 32, 32)
    n_image_tokens = int((inputs["input_ids"] == model.config.image_token_id).sum())
    assert n_image_tokens == model.config.image_seq_length == 16
    assert model.generation_config.eos_token_id == tok.eos_token_id
    assert model.generation_config.pad_token_id == tok.pad_token_id


def test_batched_generation_equals_single(tmp_path: Path) -> None:
    processor, model = _load(build_tiny_llava(tmp_path / "m", seed=3))
    tok = processor.tokenizer
    prompts = [
        vicuna_v1_prompt(colour_question("red")),
        "USER: <image>\nWhat colour? ASSISTANT:",
        vicuna_v1_prompt("Describe the image in detail, please, and say which objects are there."),
        "USER: <image>\nIs this picture blue? ASSISTANT:",
    ]
    images = [colour_image(name, i) for i, name in enumerate(["red", "green", "blue", "yellow"])]
    # A random model emits pad/image tokens; suppress them so text comparisons are meaningful.
    gen = {
        "max_new_tokens": 8,
        "do_sample": False,
        "suppress_tokens": [tok.pad_token_id, model.config.image_token_id],
    }
    batch = processor(text=prompts, images=images, return_tensors="pt", padding=True)
    lengths = batch["attention_mask"].sum(dim=1).tolist()
    assert len(set(lengths)) == len(prompts)  # genuinely different lengths, so left padding is used
    assert (batch["attention_mask"][:, -1] == 1).all()
    with torch.no_grad():
        batched = model.generate(**batch, **gen)[:, batch["input_ids"].shape[1] :]
        assert any(len(_cut_at_eos(r, tok.eos_token_id)) > 1 for r in batched.tolist())
        for row, (prompt, image) in enumerate(zip(prompts, images, strict=True)):
            single_in = processor(text=prompt, images=image, return_tensors="pt")
            single = model.generate(**single_in, **gen)[0, single_in["input_ids"].shape[1] :]
            eos = tok.eos_token_id
            assert _cut_at_eos(batched[row].tolist(), eos) == _cut_at_eos(single.tolist(), eos), row


def test_trained_model_answers_depend_on_image(tmp_path: Path) -> None:
    processor, model = _load(build_tiny_llava(tmp_path / "t", seed=0, train_steps=DEFAULT_TRAIN_STEPS))
    names = list(COLOURS)
    cases = [(shown, asked) for shown in names for asked in names]
    prompts = [vicuna_v1_prompt(colour_question(asked)) for _, asked in cases]
    images = [colour_image(shown, 10_000 + i) for i, (shown, _) in enumerate(cases)]  # unseen seeds
    batch = processor(text=prompts, images=images, return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=4, do_sample=False)
    new_tokens = out[:, batch["input_ids"].shape[1] :]
    answers = [a.strip() for a in processor.batch_decode(new_tokens, skip_special_tokens=True)]
    expected = ["Yes" if shown == asked else "No" for shown, asked in cases]
    accuracy = sum(a == e for a, e in zip(answers, expected, strict=True)) / len(cases)
    assert accuracy >= 0.9, list(zip(cases, answers, strict=True))
    # The same question gets different answers for different images.
    for asked in names:
        assert {a for (_, q), a in zip(cases, answers, strict=True) if q == asked} == {"Yes", "No"}, asked
