"""HFBackend at batch size 4 on tiny checkpoints of the image-text-to-text families transformers ships
(Gemma 3, Idefics3, SmolVLM, PaliGemma, Qwen2-VL, LLaVA-OneVision): each request's generated token ids -
and so its text - are those of the request run alone, with images of different sizes and prompts of
different lengths in one left-padded batch, and a two-image request beside one-image ones where the
family takes several images per sample.

Qwen2-VL's, LLaVA-OneVision's and SmolVLM's processors hold a video processor that transformers builds
only with torchvision (SmolVLM's also needs num2words), neither a dependency: without them the checkpoint
is refused with one line naming the package, and the batching test loads the processor for images only,
with stand-ins for the video side.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from evalkit.backends.base import Request
from evalkit.backends.hf import HFBackend
from evalkit.errors import ConfigError
from tests.support.tiny_families import (
    EXTRA_PACKAGES,
    FAMILIES,
    missing_packages,
    stand_in_missing_packages,
)

MULTI_IMAGE = frozenset({"gemma3", "idefics3", "smolvlm", "qwen2_vl", "llava_onevision"})
# Weight seeds whose greedy replies differ between the requests (PaliGemma's seed 0 gives one reply for all)
SEEDS = {name: 1 if name == "paligemma" else 0 for name in FAMILIES}
# Families that keep an image's aspect ratio, so that images of different sizes give different numbers
# of image tokens in one batch
VARIABLE_IMAGE_TOKENS = frozenset({"idefics3", "smolvlm", "qwen2_vl", "llava_onevision"})

# (height, width): square, wide, tall (Idefics3/SmolVLM tiles, Qwen2-VL's native resolution, LLaVA-OneVision's
# anyres grid); prompts of different lengths, so rows are left padded by different amounts
SIZES = [(32, 32), (24, 60), (60, 36), (48, 48)]
PROMPTS = [
    "What is it?",
    "Describe the image in detail, please, and say what colour the largest object in the picture is.",
    "How many objects are there?",
    "Is there a cat in the picture? Answer yes or no.",
]


def _image(seed: int, height: int, width: int) -> Image.Image:
    """A seeded image: a colour gradient (so that its content, not only its size, reaches the reply)."""
    rng = np.random.default_rng(seed)
    start, end = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    ramp = np.linspace(0.0, 1.0, width)[None, :, None]
    pixels = start + (end - start) * ramp + rng.normal(0.0, 10.0, (height, width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="RGB")


def _requests(family: str) -> list[Request]:
    requests = [
        Request(id=f"r{i}", images=[_image(i, h, w)], prompt=prompt, max_new_tokens=8, template=None)
        for i, ((h, w), prompt) in enumerate(zip(SIZES, PROMPTS, strict=True))
    ]
    if family in MULTI_IMAGE:  # a two-image request in place of the third one-image request
        two = [_image(10, 40, 28), _image(11, 32, 56)]
        requests[2] = Request(id="two", images=two, prompt="Compare the two images.", max_new_tokens=8)
    return requests


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("families")
    return {name: build(root / name, seed=SEEDS[name]) for name, build in FAMILIES.items()}


@pytest.fixture(scope="module", params=list(FAMILIES))
def backend(request: pytest.FixtureRequest, folders: dict[str, Path]) -> Iterator[HFBackend]:
    family = request.param
    with pytest.MonkeyPatch.context() as monkeypatch:
        if missing_packages(family):
            stand_in_missing_packages(monkeypatch)
        loaded = HFBackend(str(folders[family]), dtype="float32", device="cpu", batch_size=4)
    assert loaded.model.config.model_type == family
    yield loaded
    loaded.close()


def _run(backend: HFBackend, batch: list[Request]) -> tuple[list[Any], list[list[int]]]:
    """(texts, generated token ids per request up to the first stop token) of one prepared batch."""
    generated: list[list[int]] = []
    generate = backend.model.generate

    def recording(**inputs: Any) -> Any:
        out = generate(**inputs)
        for row in out[:, inputs["input_ids"].shape[1] :].tolist():
            stop = next((i for i, t in enumerate(row) if t in inputs["eos_token_id"]), len(row))
            generated.append(row[:stop])
        return out

    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(backend.model, "generate", recording)
        texts = backend.generate(backend.prepare(batch))
    return texts, generated


def test_batch_of_4_equals_batch_of_1(backend: HFBackend) -> None:
    family = backend.model.config.model_type
    requests = _requests(family)
    prepared = backend.prepare(requests)
    assert prepared[0]["input_ids"].shape[0] == 4
    mask = prepared[0]["attention_mask"]
    assert mask.sum(dim=1).unique().numel() > 1, "prompts of one length: left padding is not exercised"
    image_tokens = (prepared[0]["input_ids"] == backend.model.config.image_token_id).sum(dim=1).tolist()
    if family in VARIABLE_IMAGE_TOKENS:
        assert len(set(image_tokens)) > 1, image_tokens

    texts, ids = _run(backend, requests)
    alone = [_run(backend, [r]) for r in requests]
    assert ids == [one_ids[0] for _, one_ids in alone]
    assert texts == [one_texts[0] for one_texts, _ in alone]
    assert all(isinstance(t, str) for t in texts)
    assert all(len(row) > 0 for row in ids), f"{family}: a request generated no token before its stop token"
    assert any(texts), f"{family}: every reply decodes to an empty string"
    assert len({tuple(row) for row in ids}) > 1, f"{family}: one reply for every request proves little"


@pytest.mark.parametrize("family", sorted(EXTRA_PACKAGES))
def test_missing_package_is_one_line(folders: dict[str, Path], family: str) -> None:
    missing = missing_packages(family)
    if not missing:
        pytest.skip(f"{', '.join(EXTRA_PACKAGES[family])} installed: the processor loads")
    with pytest.raises(ConfigError) as caught:
        HFBackend(str(folders[family]), dtype="float32", device="cpu")
    message = str(caught.value)
    assert "\n" not in message.strip()
    assert missing[0] in message.lower(), message  # the first the processor's loading reaches
