"""What the backend's one-image-list-per-request fixes, and processors that need a missing package."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evalkit.backends.base import Request
from evalkit.backends.hf import HFBackend
from evalkit.errors import ConfigError
from tests.support.tiny_families import build_gemma3, build_idefics3


def _image(seed: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (30, 30, 3), dtype=np.uint8))


def test_gemma3_flat_image_list_is_what_failed(tmp_path: Path) -> None:
    """The regression guarded: a flat list of four images for four prompts is refused by Gemma 3's
    processor ("Found [1, 1, 1, 1] ... tokens"); the backend's nested lists run the same batch."""
    backend = HFBackend(build_gemma3(tmp_path / "gemma3"), dtype="float32", device="cpu")
    requests = [Request(str(i), [_image(i)], "Is it red?", 4, None) for i in range(4)]
    texts = [backend.render(r) for r in requests]
    with pytest.raises(ValueError, match=r"Found \[1, 1, 1, 1\]"):
        backend.processor(
            text=texts, images=[r.images[0] for r in requests], padding=True, return_tensors="pt"
        )
    assert len(backend.generate(backend.prepare(requests))) == 4


def test_processor_needing_a_missing_package_is_one_line(tmp_path: Path) -> None:
    """SmolVLM's processor holds a video processor that needs torchvision (not installed here)."""
    if importlib.util.find_spec("torchvision") is not None:
        pytest.skip("torchvision is installed here: SmolVLM's processor loads")
    smolvlm = shutil.copytree(build_idefics3(tmp_path / "idefics3"), tmp_path / "smolvlm")
    config = json.loads((smolvlm / "config.json").read_text())
    config.update(model_type="smolvlm", architectures=["SmolVLMForConditionalGeneration"])
    config["vision_config"]["model_type"] = "smolvlm_vision"
    (smolvlm / "config.json").write_text(json.dumps(config))
    processor = json.loads((smolvlm / "processor_config.json").read_text())
    processor.update(
        processor_class="SmolVLMProcessor", video_processor={"video_processor_type": "SmolVLMVideoProcessor"}
    )
    processor["image_processor"]["image_processor_type"] = "SmolVLMImageProcessor"
    (smolvlm / "processor_config.json").write_text(json.dumps(processor))
    with pytest.raises(ConfigError) as caught:
        HFBackend(smolvlm, dtype="float32", device="cpu")
    assert str(caught.value) == (
        f"{smolvlm}: SmolVLMVideoProcessor needs the Python package torchvision (pip install torchvision)"
    )


def test_paligemma_template_frames_the_prompt_as_its_processor_does(tmp_path: Path) -> None:
    """PaliGemma has no chat template: the `paligemma` template gives the image tokens and the prompt, the
    processor puts BOS between them and a newline after ("<image>"*n, <bos>, prompt, "\\n")."""
    from tests.support.tiny_families import build_paligemma

    backend = HFBackend(build_paligemma(tmp_path / "paligemma"), dtype="float32", device="cpu")
    request = Request("a", [_image(0)], "answer en What colour?", 4, "paligemma")
    ids = backend.prepare([request])[0]["input_ids"][0].tolist()
    image = backend.processor.image_token_id
    n = ids.count(image)
    assert n > 0 and ids[:n] == [image] * n and ids[n] == backend.tokenizer.bos_token_id
    assert ids[n + 1 :] == backend.tokenizer("answer en What colour?\n", add_special_tokens=False).input_ids
