"""The vllm backend's requests, built without vLLM: the text, token ids, stops and padded images equal the hf
backend's for the same request, on the tiny LLaVA and on a converted LLaVA-1.5 stand-in with a Llama
sentencepiece tokenizer (the "▁" after each image). No vLLM runs here: the engine in the pipeline test is a
scripted one that answers with fixed token ids, to check what the backend sends and how it decodes; how far
vLLM's generations agree with transformers' is measured on a GPU by bench/vllm_agreement.py."""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from evalkit.backends import BackendOptions
from evalkit.backends.base import Failure, Request
from evalkit.backends.hf import HFBackend
from evalkit.backends.vllm import MISSING, EngineRequest, RequestBuilder, VLLMBackend
from evalkit.checkpoints import detect, materialise
from evalkit.data.images import expand_to_square, load_image
from evalkit.demo.tiny_model import build_tiny_llava
from evalkit.errors import ConfigError
from evalkit.models import backend_factory, resolve_model
from evalkit.pipeline import LazyBackend
from evalkit.protocols import SHORT, get_protocol
from evalkit.registry import get_task
from evalkit.runner import RunSettings, run_task
from tests.support import seed_checkpoints as sc
from tests.support.fixtures import write_pope
from tests.test_e2e_openai import evalkit, load_jsonl

CLIP_PAD = (122, 116, 104)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("vllm-req")
    clip = sc.build_clip_tower(root / "clip-vit-large-patch14-336")
    llava = sc.build_llava_v15(root / "llava-v1.5-7b", clip)
    xtuner = sc.build_xtuner(root / "llava-llama-3-8b-v1_1", clip)
    with pytest.MonkeyPatch.context() as mp:  # conversions into this test's cache
        mp.setenv("EVALKIT_CACHE", str(root / "cache"))
        return {
            "tiny": build_tiny_llava(root / "tiny", seed=0),
            "llava-v1.5": materialise(detect(llava), clip),
            "xtuner": materialise(detect(xtuner), clip),
        }


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_pope(root)
    return root


def _requests(n_images: int = 1) -> list[Request]:
    image = Image.new("RGB", (40, 40), (220, 30, 30))
    images = [image] * n_images
    question = "Is the image red?" + SHORT
    return [
        Request("llava", images, question, 8, "vicuna_v1", "llava"),  # protocol llava
        Request("chat", images, question, 8, None, "processor"),  # the checkpoint's chat template
        Request("plain", images, question, 8, "vicuna_v1", "processor"),
    ]


def _expanded(ids: list[int], image_token_id: int, run: int) -> list[int]:
    """What vLLM's LLaVA prompt update makes of token ids: each image token becomes the image's run."""
    return [t for i in ids for t in ([i] * run if i == image_token_id else [i])]


@pytest.mark.parametrize("name", ["tiny", "llava-v1.5"])
def test_text_and_token_ids_are_the_hf_backends(folders: dict[str, Path], name: str) -> None:
    hf = HFBackend(folders[name], dtype="float32", device="cpu")
    builder = RequestBuilder.from_folder(folders[name])
    for request in _requests():
        built = builder.build(request)
        assert isinstance(built, EngineRequest)
        assert built.prompt == hf._no_double_bos(hf.render(request)), request.id
        joint = hf.prepare([request])[0]["input_ids"][0].tolist()
        if request.tokenization == "processor":  # vLLM runs the same HF processor on the same text
            assert built.prompt_token_ids is None
            continue
        assert built.prompt_token_ids is not None and built.prompt_token_ids.count(hf.image_token_id) == 1
        run = joint.count(hf.image_token_id)
        assert run > 1  # the processor's run of image tokens, which vLLM puts in place of the one
        assert _expanded(built.prompt_token_ids, hf.image_token_id, run) == joint
    if name == "llava-v1.5":  # what a text prompt would have given vLLM: one "▁" fewer after the image
        llava = builder.build(_requests()[0])
        assert isinstance(llava, EngineRequest) and llava.prompt_token_ids is not None
        whole = builder.tokenizer(llava.prompt).input_ids
        assert len(whole) == len(llava.prompt_token_ids) - 1
        after = llava.prompt_token_ids.index(hf.image_token_id) + 1
        assert builder.tokenizer.convert_ids_to_tokens(llava.prompt_token_ids[after]) == "▁"


def test_requests_without_images_and_with_two(folders: dict[str, Path]) -> None:
    hf = HFBackend(folders["llava-v1.5"], dtype="float32", device="cpu")
    builder = RequestBuilder.from_folder(folders["llava-v1.5"], max_images=2)
    for n in (0, 2):
        request = _requests(n)[0]
        built = builder.build(request)
        assert isinstance(built, EngineRequest) and built.prompt_token_ids is not None
        joint = hf.prepare([request])[0]["input_ids"][0].tolist()
        run = joint.count(hf.image_token_id) // n if n else 1
        assert _expanded(built.prompt_token_ids, hf.image_token_id, run) == joint
        assert ("multi_modal_data" in built.engine_prompt()) == bool(n)


@pytest.mark.parametrize("name", ["tiny", "llava-v1.5", "xtuner"])
def test_stop_ids_are_the_hf_backends(folders: dict[str, Path], name: str, tmp_path: Path) -> None:
    hf = HFBackend(folders[name], dtype="float32", device="cpu")
    builder = RequestBuilder.from_folder(folders[name])
    for template in (None, "vicuna_v1", "llama3", "chatml"):
        assert builder.stops(template) == tuple(sorted(hf.stop_ids | hf.template_stops(template))), template
    if name == "xtuner":  # Llama-3: <|eot_id|> ends a reply (generation config and the llama3 template)
        assert builder.tokenizer.convert_tokens_to_ids("<|eot_id|>") in builder.stops("llama3")
    bare = shutil.copytree(folders[name], tmp_path / "bare")  # no generation_config.json: what transformers
    (bare / "generation_config.json").unlink()  # derives from the model config, as the hf backend loads it
    extra = [builder.tokenizer.bos_token]  # a config `stop:` token beside the EOS ids
    hf_bare = HFBackend(bare, dtype="float32", device="cpu", stop=extra)
    found = RequestBuilder.from_folder(bare, stop=extra).stop_ids
    assert found == hf_bare.stop_ids and builder.tokenizer.bos_token_id in found
    with pytest.raises(ConfigError, match="is not a token"):
        RequestBuilder.from_folder(folders[name], stop=["<no such token>"])


def test_sampling_settings_and_engine_prompts(folders: dict[str, Path]) -> None:
    builder = RequestBuilder.from_folder(folders["llava-v1.5"])
    llava, chat, _ = (builder.build(r) for r in _requests())
    assert isinstance(llava, EngineRequest) and isinstance(chat, EngineRequest)
    assert llava.sampling() == {
        "temperature": 0.0,
        "max_tokens": 8,
        "stop_token_ids": sorted(builder.stop_ids),
        "skip_special_tokens": True,
        "detokenize": False,
    }
    assert llava.engine_prompt() == {
        "prompt_token_ids": llava.prompt_token_ids,
        "multi_modal_data": {"image": llava.images},
    }
    assert chat.engine_prompt() == {"prompt": chat.prompt, "multi_modal_data": {"image": chat.images}}


def test_pad_colour_and_image_mode(folders: dict[str, Path]) -> None:
    builder = RequestBuilder.from_folder(folders["tiny"])
    hf = HFBackend(folders["tiny"], dtype="float32", device="cpu")
    assert builder.pad_colour == hf.pad_colour == CLIP_PAD
    assert builder.image_mode("pad") == hf.image_mode("pad") == "pad"
    anyres = RequestBuilder(builder.processor, "llava_next", hf.model.generation_config)
    assert anyres.image_mode("pad") == "native" and anyres.image_mode("crop") == "crop"


def test_centre_crop_after_padding_removes_nothing() -> None:
    """vLLM's LLaVA-1.5 processor resizes the shortest edge to 336 and centre-crops 336x336: on a padded
    (square) image the crop is the identity, so the pixels are LLaVA's pad-to-square ones."""
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    classes = [CLIPImageProcessorPil]
    if importlib.util.find_spec("torchvision") is not None:  # transformers' default CLIP processor
        from transformers.models.clip.image_processing_clip import CLIPImageProcessor

        classes.append(CLIPImageProcessor)
    rng = np.random.default_rng(0)
    for cls in classes:
        processor = cls(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336})
        for width, height in [(640, 480), (333, 500), (100, 37), (337, 200), (336, 336), (1000, 1000)]:
            image = Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
            square = expand_to_square(image, CLIP_PAD)
            cropped = processor(images=square, return_tensors="pt")["pixel_values"]
            uncropped = processor(images=square, do_center_crop=False, return_tensors="pt")["pixel_values"]
            assert cropped.shape[-2:] == (336, 336) and torch.equal(cropped, uncropped), (cls, width, height)
            if width != height:  # without the padding the crop would cut the image
                plain = processor(images=image, return_tensors="pt")["pixel_values"]
                resized = processor(images=image, do_center_crop=False, return_tensors="pt")["pixel_values"]
                assert plain.shape != resized.shape


class ScriptedEngine:
    """Stands in for vLLM's engine in-process: records the requests, answers fixed token ids (a reply,
    EOS, then tokens a stop must cut); refuses requests whose prompt holds `refuse` as vLLM refuses one
    it cannot take."""

    def __init__(self, tokenizer: object, reply: str = " Yes", refuse: str | None = None) -> None:
        self.tokenizer = tokenizer
        self.seen: list[EngineRequest] = []
        self.calls = 0
        self.refuse = refuse
        encode = tokenizer(reply, add_special_tokens=False).input_ids  # type: ignore[operator]
        self.ids = [*encode, tokenizer.eos_token_id, *encode]  # type: ignore[attr-defined]

    def generate(self, requests: Sequence[EngineRequest]) -> list[list[int]]:
        self.calls += 1
        if self.refuse and any(self.refuse in r.prompt for r in requests):
            raise ValueError("The decoder prompt is longer than the maximum model length\nmore")
        self.seen.extend(requests)
        return [list(self.ids) for _ in requests]


def test_a_run_pads_images_decodes_replies_and_resumes(
    folders: dict[str, Path], data_root: Path, tmp_path: Path
) -> None:
    builder = RequestBuilder.from_folder(folders["tiny"])
    engine = ScriptedEngine(builder.tokenizer)
    backend = VLLMBackend(builder, engine, batch_size=4, info={"engine": "scripted (test)"})
    settings = RunSettings(
        name="v", model="vllm:tiny", protocol=get_protocol("llava"), data_root=data_root, output=tmp_path
    )
    record = run_task(get_task("pope"), settings, LazyBackend(lambda: backend, 4))
    samples = {s.id: s for s in get_task("pope").load(data_root / "pope").samples}
    assert len(engine.seen) == len(samples) == record.n
    for request in engine.seen:
        (image,) = request.images
        original = load_image(samples[request.id].images[0])
        side = max(original.size)
        assert image.size == (side, side) and original.size != image.size
        assert image.getpixel((0, 0)) == CLIP_PAD
        assert np.array_equal(np.asarray(image), np.asarray(expand_to_square(original, CLIP_PAD)))
        assert request.prompt_token_ids is not None and request.max_tokens == 128
    preds = load_jsonl(tmp_path / "v" / "pope" / "predictions.jsonl")
    expected = builder.tokenizer.decode(engine.ids[: engine.ids.index(builder.tokenizer.eos_token_id)])
    assert {p["output"] for p in preds} == {expected} and expected.strip() == "Yes"
    metrics = json.loads((tmp_path / "v" / "pope" / "metrics.json").read_text())
    assert metrics["model_config"]["backend"] == "vllm" and metrics["model_config"]["engine"].startswith(
        "scripted"
    )

    def never() -> VLLMBackend:
        raise AssertionError("a finished task loaded the model")

    again = LazyBackend(never, 4)
    assert run_task(get_task("pope"), settings, again).n == record.n and not again.loaded


def test_a_too_long_request_fails_alone_and_other_refusals_stop_the_run(folders: dict[str, Path]) -> None:
    builder = RequestBuilder.from_folder(folders["tiny"])
    engine = ScriptedEngine(builder.tokenizer, refuse="TOO LONG")
    backend = VLLMBackend(builder, engine)
    image = Image.new("RGB", (32, 32))
    batch = [
        Request("ok", [image], "Is it red?", 4, "vicuna_v1", "llava"),
        Request("long", [image], "TOO LONG", 4, "vicuna_v1", "llava"),
        Request("ok2", [image], "Is it blue?", 4, "vicuna_v1", "llava"),
    ]
    ok, long, ok2 = backend.generate(backend.prepare(batch))
    assert isinstance(ok, str) and isinstance(ok2, str) and ok.strip() == "Yes"
    assert isinstance(long, Failure)
    assert (
        long.reason == "vLLM refused the request: The decoder prompt is longer than the maximum model length"
    )
    assert [r.id for r in engine.seen] == ["ok", "ok2"]

    def bad_parameter(requests: Sequence[EngineRequest]) -> list[list[int]]:
        engine.calls += 1
        raise ValueError("temperature must be non-negative, got -1.0.")

    engine.calls = 0
    engine.generate = bad_parameter  # type: ignore[method-assign]
    with pytest.raises(ValueError, match="temperature must be non-negative"):
        backend.generate(backend.prepare(batch))
    assert engine.calls == 1  # not retried one request at a time


def test_more_images_than_the_engine_takes_stop_before_generating(folders: dict[str, Path]) -> None:
    builder = RequestBuilder.from_folder(folders["tiny"])
    engine = ScriptedEngine(builder.tokenizer)
    backend = VLLMBackend(builder, engine)
    image = Image.new("RGB", (32, 32))
    batch = [
        Request("ok", [image], "Is it red?", 4, "vicuna_v1", "llava"),
        Request("two", [image, image], "Is it red?", 4, "vicuna_v1", "llava"),
    ]
    with pytest.raises(ConfigError) as caught:
        backend.prepare(batch)
    assert str(caught.value) == (
        "sample 'two' has 2 images; the vllm engine takes at most 1 per prompt: set max_images: 2 "
        "(or the task's largest count) in the model config"
    )
    assert engine.calls == 0
    wider = VLLMBackend(RequestBuilder.from_folder(folders["tiny"], max_images=2), engine)
    assert all(isinstance(r, str) for r in wider.generate(wider.prepare(batch)))


def test_vllm_prefix_config_and_tensor_parallel_option(tmp_path: Path) -> None:
    spec = resolve_model("vllm:llava-hf/llava-1.5-7b-hf")
    assert (spec.backend, spec.name, spec.target) == (
        "vllm",
        "llava-1.5-7b-hf-vllm",
        "llava-hf/llava-1.5-7b-hf",
    )
    config = resolve_model("llava-v1.5-7b-vllm")
    assert config.backend == "vllm" and config.options["trained_template"] == "vicuna_v1"
    assert config.template("vicuna_v1") == (True, None)  # the protocol's template, as for hf
    assert (
        resolve_model("llava-v1.5-7b").template("llama3") == config.template("llama3") == (False, "vicuna_v1")
    )
    assert config.settings("float16") == {
        "backend": "vllm",
        "target": "liuhaotian/llava-v1.5-7b",
        "revision": "main",
        "dtype": "float16",
    }  # the tensor parallel size is not pinned
    with pytest.raises(ConfigError, match="--tensor-parallel-size is for the vllm backend"):
        backend_factory(resolve_model("llava-v1.5-7b"), BackendOptions(tensor_parallel_size=2))
    backend_factory(config, BackendOptions(tensor_parallel_size=2))  # lazy: nothing loads
    from evalkit.sweep import SweepFile, _request

    sweep = SweepFile.model_validate(
        {"models": [{"model": "vllm:x/y", "tensor_parallel_size": 2}], "tasks": "pope"}
    )
    assert _request(sweep.models[0], None, sweep, tmp_path, None).backend.tensor_parallel_size == 2


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed")
def test_without_vllm_the_run_stops_with_one_line(
    folders: dict[str, Path], data_root: Path, tmp_path: Path
) -> None:
    for model in (f"vllm:{folders['tiny']}", "llava-v1.5-7b-vllm"):  # the config: before any download
        args = ["run", "--model", model, "--tasks", "pope", "--data-root", str(data_root)]
        result = evalkit(*args, "--output", str(tmp_path / "out"), env={"HF_HUB_OFFLINE": "1"})
        assert result.returncode != 0
        assert result.stderr.strip().splitlines() == [f"error: {MISSING}"]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.jsonl"))
