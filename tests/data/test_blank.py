"""The blank-image ablation (`--blank-images`, a sweep's `blank_images: true`): what the backend receives,
what is recorded, and that a blank run never resumes into a normal run's folder (or the other way round)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from evalkit.backends.base import CLIP_MEAN_RGB, Request
from evalkit.backends.scripted import ScriptedBackend
from evalkit.data.blank import BLANK_RGB
from evalkit.pipeline import LazyBackend
from evalkit.protocols import get_protocol
from evalkit.registry import get_task
from evalkit.runner import RunSettings, run_task
from tests.support.fixtures import COLOURS, mme_items, write_mme, write_pope
from tests.test_e2e_openai import evalkit, load_jsonl

PERCEPTION = {"existence", "count", "position", "color", "posters", "celebrity", "scene", "landmark",
              "artwork", "ocr"}  # fmt: skip  # MME's perception subtasks (BENCHMARKS.md)


def _colour_reader(seen: list[Image.Image]) -> ScriptedBackend:
    """A backend that looks: "Yes" when the centre pixel is (near) the colour the question asks about."""

    def reply(request: Request) -> str:
        img = request.images[0]
        seen.append(img)
        centre = img.getpixel((img.width // 2, img.height // 2))
        shown = [
            n for n, rgb in COLOURS.items() if max(abs(a - b) for a, b in zip(centre, rgb, strict=True)) < 40
        ]
        match = re.search(r"Is the image (\w+)\?", request.prompt)
        assert match, request.prompt
        return "Yes" if shown == [match.group(1)] else "No"

    return ScriptedBackend(reply)


@pytest.mark.parametrize("blank", [False, True])
def test_every_image_is_blanked_after_loading_and_before_the_image_mode(tmp_path: Path, blank: bool) -> None:
    write_mme(tmp_path / "data")
    seen: list[Image.Image] = []
    settings = RunSettings(
        name="reader",
        model="scripted",
        protocol=get_protocol("llava"),
        data_root=tmp_path / "data",
        output=tmp_path / "out",
        blank_images=blank,
    )
    record = run_task(get_task("mme"), settings, LazyBackend(lambda: _colour_reader(seen), batch_size=4))
    items = mme_items()
    assert len(seen) == 2 * len(items)
    # The fixtures are 40x24; protocol llava pads MME images to a square with the CLIP mean colour. A blank
    # image keeps its size, so it is padded the same way: mid-grey inside, the pad colour above and below.
    assert {img.size for img in seen} == {(40, 40)}
    assert {img.getpixel((0, 0)) for img in seen} == {CLIP_MEAN_RGB}
    centres = {img.getpixel((20, 20)) for img in seen}
    subtasks = {i.subtask.lower() for i in items}
    perception = len(subtasks & PERCEPTION)
    if blank:
        assert centres == {BLANK_RGB}
        # the reader sees no colour and answers "No": each image is asked one true and one false question,
        # so every subtask gets acc 50 and acc_plus 0 (MME's rules)
        assert all(
            record.metrics[f"{s}_acc"] == 50.0 and record.metrics[f"{s}_acc_plus"] == 0.0 for s in subtasks
        )
        assert record.metrics["perception"] == 50.0 * perception
        assert record.generation["blank_images"] is True
    else:
        assert BLANK_RGB not in centres
        assert record.metrics["perception"] == 200.0 * perception  # it sees every colour: all right
        assert "blank_images" not in record.generation


def test_blank_run_is_named_recorded_and_never_mixed_with_a_normal_run(tmp_path: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "out"
    write_pope(data)
    yes = tmp_path / "yes.json"
    yes.write_text(json.dumps({"replies": {}, "default": "Yes"}))
    base = [
        "run",
        "--model",
        f"scripted:{yes}",
        "--tasks",
        "pope",
        "--data-root",
        str(data),
        "--output",
        str(out),
    ]
    normal = evalkit(*base)
    assert normal.returncode == 0, normal.stderr
    blank = evalkit(*base, "--blank-images")
    assert blank.returncode == 0, blank.stderr
    assert sorted(p.name for p in out.iterdir()) == ["yes", "yes+blank"]  # the default name says blank
    folder = out / "yes+blank" / "pope"
    assert json.loads((folder / "manifest.json").read_text())["generation"]["blank_images"] is True
    assert json.loads((folder / "metrics.json").read_text())["generation"]["blank_images"] is True
    assert (
        "blank_images" not in json.loads((out / "yes" / "pope" / "manifest.json").read_text())["generation"]
    )
    before = {f: load_jsonl(out / f / "pope" / "predictions.jsonl") for f in ("yes", "yes+blank")}
    # a blank run into the normal folder and a normal run into the blank one: refused, one line naming the key
    for args in ([*base, "--blank-images", "--name", "yes"], [*base, "--name", "yes+blank"]):
        refused = evalkit(*args)
        assert refused.returncode == 2, refused.stdout
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and "generation.blank_images" in lines[0], refused.stderr
    assert before == {f: load_jsonl(out / f / "pope" / "predictions.jsonl") for f in ("yes", "yes+blank")}
