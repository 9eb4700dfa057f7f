"""The transformers backend on a tiny LLaVA-1.5 checkpoint built offline: batching, templates, pixels."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from evalkit.backends.base import Request
from evalkit.backends.hf import HFBackend
from evalkit.data.images import expand_to_square
from evalkit.demo.tiny_model import build_tiny_llava
from evalkit.pipeline import LazyBackend
from evalkit.protocols import get_protocol
from evalkit.registry import get_task
from evalkit.runner import RunSettings, run_task
from tests.support.fixtures import image, write_mme, write_pope
from tests.test_e2e_openai import evalkit, load_jsonl


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llava(tmp_path_factory.mktemp("tiny") / "tiny-llava", seed=0)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_mme(root)
    write_pope(root)
    return root


def outputs_by_batch_size(
    checkpoint: Path, data_root: Path, out: Path, tasks: str, sizes: tuple[str, ...]
) -> dict:
    """{batch size: {sample id: output}} from CLI runs of each batch size."""
    outputs = {}
    for size in sizes:
        result = evalkit(
            "run",
            "--model",
            str(checkpoint),
            "--tasks",
            tasks,
            "--data-root",
            str(data_root),
            "--output",
            str(out),
            "--name",
            f"bs{size}",
            "--batch-size",
            size,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr
        outputs[size] = {
            r["id"]: r["output"]
            for task in tasks.split(",")
            for r in load_jsonl(out / f"bs{size}" / task / "predictions.jsonl")
        }
    return outputs


def test_batch_of_8_equals_batch_of_1(checkpoint: Path, data_root: Path, tmp_path: Path) -> None:
    outputs = outputs_by_batch_size(checkpoint, data_root, tmp_path, "mme,pope", ("1", "8"))
    assert len(outputs["1"]) == 24
    assert outputs["1"] == outputs["8"]
    assert any(outputs["1"].values())  # the model did produce text
    record = json.loads((tmp_path / "bs8" / "mme" / "metrics.json").read_text())
    assert record["model_config"]["backend"] == "hf" and record["model_config"]["model_type"] == "llava"
    assert record["model_config"]["dtype"] == "float32" and record["generation"]["template"] == "vicuna_v1"


def test_protocol_template_and_chat_template_rendering(checkpoint: Path) -> None:
    backend = HFBackend(checkpoint)
    request = Request(
        id="x", images=[image("red")], prompt="Is it red?", max_new_tokens=4, template="vicuna_v1"
    )
    assert backend.render(request) == (
        "A chat between a curious user and an artificial intelligence assistant. "
        "The assistant gives helpful, detailed, and polite answers to the user's questions. "
        "USER: <image>\nIs it red? ASSISTANT:"
    )
    native = backend.render(Request(id="x", images=[image("red")], prompt="Is it red?", max_new_tokens=4))
    assert native == backend.processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Is it red?"}]}],
        add_generation_prompt=True,
        tokenize=False,
    )
    assert native != backend.render(request) and "Is it red?" in native


def test_padded_pixels_reach_the_vision_tower(checkpoint: Path, data_root: Path, tmp_path: Path) -> None:
    """Protocol llava pads the 40x24 fixture to 40x40 with the CLIP mean colour before the processor:
    the tensor the vision tower receives must equal the processor's output for that padded image."""
    backend = HFBackend(checkpoint)
    seen: list[torch.Tensor] = []
    tower = backend.model.model.vision_tower
    handle = tower.register_forward_pre_hook(
        lambda _m, args, kwargs: seen.append((args[0] if args else kwargs["pixel_values"]).detach().clone()),
        with_kwargs=True,
    )
    settings = RunSettings(
        name="probe",
        model=str(checkpoint),
        protocol=get_protocol("llava"),
        data_root=data_root,
        output=tmp_path,
        limit=1,
    )
    try:
        run_task(get_task("pope"), settings, LazyBackend(lambda: backend, batch_size=1))
    finally:
        handle.remove()
    assert seen, "the vision tower never ran"
    first = get_task("pope").load(data_root / "pope").samples[0]
    from evalkit.data.images import load_image

    padded = expand_to_square(load_image(first.images[0]), backend.pad_colour)
    expected = backend.processor.image_processor(images=[padded], return_tensors="pt")["pixel_values"]
    assert torch.allclose(seen[0], expected.to(seen[0].dtype))
    unpadded = backend.processor.image_processor(images=[load_image(first.images[0])], return_tensors="pt")
    assert not torch.allclose(seen[0], unpadded["pixel_values"])
    # the top rows are pad colour: (122/255 - mean) / std is near zero in every channel
    assert np.abs(seen[0][0, :, 0, :].numpy()).max() < 0.03
    assert backend.pad_colour == (122, 116, 104)


def test_llava_next_batches_and_keeps_native_images(data_root: Path, tmp_path: Path) -> None:
    """LLaVA-1.6 (anyres): batch 4 equals batch 1, and protocol llava's pad mode is not applied."""
    from tests.support.tiny_next import build_tiny_llava_next

    checkpoint = build_tiny_llava_next(tmp_path / "tiny-next")
    outputs = outputs_by_batch_size(checkpoint, data_root, tmp_path, "pope", ("1", "4"))
    assert len(outputs["1"]) == 10 and outputs["1"] == outputs["4"]
    backend = HFBackend(checkpoint)
    assert backend.model.config.model_type == "llava_next"
    assert backend.image_mode("pad") == "native" and backend.image_mode("crop") == "crop"


class CountingHF(HFBackend):
    """The real backend, counting the rows of each batch it generates."""

    rows: list[int]

    def generate(self, prepared: tuple[dict, int]) -> list:
        self.rows.append(int(prepared[0]["input_ids"].shape[0]))
        return super().generate(prepared)


def test_resume_regenerates_a_partly_done_batch_whole(
    checkpoint: Path, data_root: Path, tmp_path: Path
) -> None:
    """Batches are fixed over the task: a resumed batch keeps its members, so fp16 kernels chosen by batch
    shape cannot make a resumed run differ from an uninterrupted one."""
    settings = RunSettings(
        name="r", model=str(checkpoint), protocol=get_protocol("llava"), data_root=data_root, output=tmp_path
    )
    first = CountingHF(checkpoint)
    first.rows = []
    run_task(get_task("pope"), settings, LazyBackend(lambda: first, 4))
    assert first.rows == [4, 4, 2]
    preds = tmp_path / "r" / "pope" / "predictions.jsonl"
    full = load_jsonl(preds)
    preds.write_text("".join(json.dumps(r) + "\n" for r in full if r["id"] != full[1]["id"]))
    (tmp_path / "r" / "pope" / "metrics.json").unlink()
    again = CountingHF(checkpoint)
    again.rows = []
    run_task(get_task("pope"), settings, LazyBackend(lambda: again, 4))
    assert again.rows == [4]  # the whole batch of the missing sample, not a batch of one
    resumed = load_jsonl(preds)
    assert len(resumed) == len({r["id"] for r in resumed}) == 10
    assert {r["id"]: r["output"] for r in resumed} == {r["id"]: r["output"] for r in full}


def test_unreadable_images_alone_never_load_the_model(
    checkpoint: Path, data_root: Path, tmp_path: Path
) -> None:
    import shutil

    root, model = tmp_path / "data", tmp_path / "model"
    shutil.copytree(data_root, root)
    shutil.copytree(checkpoint, model)
    (root / "coco" / "val2014" / "COCO_val2014_000000000101.jpg").write_bytes(b"not an image")
    out = tmp_path / "out"
    args = ["run", "--model", str(model), "--tasks", "pope", "--data-root", str(root), "--output", str(out)]
    assert evalkit(*args, timeout=600).returncode == 0
    for weights in model.glob("*.safetensors"):  # loading the model would now fail (the fingerprint,
        stat = weights.stat()  # size and mtime, stays: the run is still the same model's)
        weights.write_bytes(b"\0" * stat.st_size)
        os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    again = evalkit(*args, timeout=600)
    assert again.returncode == 0, again.stderr
    metrics = json.loads((out / "model" / "pope" / "metrics.json").read_text())
    assert metrics["metrics"]["failed"] == 1 and metrics["model_config"]["backend"] == "hf"


def test_settings_pinned_on_resume(checkpoint: Path, data_root: Path, tmp_path: Path) -> None:
    base = [
        "run",
        "--model",
        str(checkpoint),
        "--tasks",
        "pope",
        "--data-root",
        str(data_root),
        "--output",
        str(tmp_path),
        "--name",
        "pin",
    ]
    assert evalkit(*base, "--dtype", "float32", timeout=600).returncode == 0
    other = evalkit(*base, "--dtype", "bfloat16", timeout=600)
    assert other.returncode == 2 and "model_settings" in other.stderr and "bfloat16" in other.stderr
    limited = evalkit(*base, "--dtype", "float32", "--limit", "3", timeout=600)
    assert limited.returncode == 2 and "results for 10 samples" in limited.stderr
