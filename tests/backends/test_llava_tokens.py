"""LLaVA's tokenization in the hf backend, made with one tokenizer pass: the processor is given only the image
tokens (for the pixels and each image's run of tokens), the text is tokenized chunk by chunk, every chunk of
the batch in one call. Checked against the processor's own joint pass on tiny LLaVA-1.5 and LLaVA-1.6 models,
the latter with images of different sizes (runs of different lengths)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from evalkit.backends.base import Request
from evalkit.backends.hf import HFBackend, llava_token_ids, llava_token_rows
from evalkit.demo.tiny_model import build_tiny_llava
from evalkit.errors import ConfigError
from tests.support.tiny_next import build_tiny_llava_next

QUESTION = "What is shown?\nAnswer the question using a single word or phrase."


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> dict[str, HFBackend]:
    tmp = tmp_path_factory.mktemp("tokens")
    return {
        "llava": HFBackend(build_tiny_llava(tmp / "llava"), device="cpu"),
        "llava_next": HFBackend(build_tiny_llava_next(tmp / "next"), device="cpu"),
    }


def images(*sizes: tuple[int, int]) -> list[Image.Image]:
    return [Image.new("RGB", size, (40 * i, 90, 200)) for i, size in enumerate(sizes)]


def rows(ids: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
    return [
        [t for t, k in zip(r, m, strict=True) if k] for r, m in zip(ids.tolist(), mask.tolist(), strict=True)
    ]


def split_runs(ids: list[int], token: int) -> tuple[list[int], list[int]]:
    """The ids without the image tokens, and the length of each run of image tokens, in order."""
    runs: list[int] = []
    for i, t in enumerate(ids):
        if t == token:
            if i and ids[i - 1] == token:
                runs[-1] += 1
            else:
                runs.append(1)
    return [t for t in ids if t != token], runs


@pytest.mark.parametrize("kind", ["llava", "llava_next"])
def test_runs_are_the_processors_and_text_is_tokenized_by_chunks(
    backends: dict[str, HFBackend], kind: str
) -> None:
    backend = backends[kind]
    batch = [
        Request("a", images((40, 24)), QUESTION, 4, "vicuna_v1", "llava"),
        Request("b", images((30, 90), (64, 64)), "Compare them.", 4, "vicuna_v1", "llava"),
    ]
    inputs, _, _ = backend.prepare(batch)
    ours = rows(inputs["input_ids"], inputs["attention_mask"])
    assert inputs["attention_mask"][:, -1].tolist() == [1, 1]  # left padded
    tok, token = backend.tokenizer, backend.image_token_id
    for request, row in zip(batch, ours, strict=True):
        text = backend.render(request)
        # the processor's own joint pass over the whole text: how many tokens it gives each image
        joint = backend.processor(text=[text], images=[request.images], return_tensors="pt")
        _, expected_runs = split_runs(joint["input_ids"][0].tolist(), token)
        chunks = [tok(chunk).input_ids for chunk in text.split(backend.image_token)]
        expected_text = chunks[0] + [t for chunk in chunks[1:] for t in chunk[1:]]  # later chunks lose BOS
        got_text, got_runs = split_runs(row, token)
        assert got_runs == expected_runs and len(got_runs) == len(request.images)
        assert got_text == expected_text
        assert chunks[1][0] == tok.bos_token_id  # each chunk was tokenized with its own BOS, then dropped
    if kind == "llava_next":  # images of other shapes get runs of other lengths: each image is its own
        assert len(set(split_runs(ours[1], token)[1])) == 2
    joint_pixels = backend.processor(
        text=[backend.render(r) for r in batch],
        images=[r.images for r in batch],
        padding=True,
        return_tensors="pt",
    )
    for key in ("pixel_values", "image_sizes"):
        if key in joint_pixels:
            assert torch.equal(inputs[key], joint_pixels[key])


def test_adjacent_images_each_keep_their_run(backends: dict[str, HFBackend]) -> None:
    """A template with nothing between images (image_sep ""): LLaVA puts the images side by side."""
    backend = backends["llava_next"]
    request = Request("a", images((40, 24), (24, 40), (64, 64)), "Which?", 4, "paligemma", "llava")
    text = backend.render(request)
    assert backend.image_token * 3 in text
    inputs, _, _ = backend.prepare([request])
    ids = inputs["input_ids"][0].tolist()
    joint = backend.processor(text=[text], images=[request.images], return_tensors="pt")["input_ids"][0]
    # the joint pass runs the three together; the image tokens in all are the same count, in one block
    assert ids.count(backend.image_token_id) == joint.tolist().count(backend.image_token_id)
    first = ids.index(backend.image_token_id)
    block = ids[first : first + ids.count(backend.image_token_id)]
    assert set(block) == {backend.image_token_id}


def test_batched_rows_equal_one_text_at_a_time(backends: dict[str, HFBackend]) -> None:
    backend = backends["llava"]
    tok, image, token = backend.tokenizer, backend.image_token, backend.image_token_id
    texts = [f"USER: {image}\nred? ASSISTANT:", f"{image}\n{image}\n两张图", "no image at all", f" {image}x"]
    runs = [[3], [2, 5], [], [1]]
    batched = llava_token_rows(tok, texts, image, token, runs)
    assert batched == [llava_token_ids(tok, t, image, token, r) for t, r in zip(texts, runs, strict=True)]
    assert [row.count(token) for row in batched] == [3, 7, 0, 1]


def test_an_image_token_written_in_a_prompt_is_one_line(backends: dict[str, HFBackend]) -> None:
    backend = backends["llava"]
    request = Request("a", images((40, 24)), f"Look at {backend.image_token} here", 4, "vicuna_v1", "llava")
    with pytest.raises(ConfigError, match=r"2 <image> in the text but 1 images"):
        backend.prepare([request])
