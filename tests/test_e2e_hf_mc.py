"""End to end: AI2D, MMStar and MMMU snapshots through the CLI and the openai backend against a real
HTTP server on 127.0.0.1, with scripted replies; images, prompts and metrics checked by hand."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from tests.support.fixtures import COLOURS
from tests.support.fixtures_hf_mc import write_ai2d, write_mmmu, write_mmstar
from tests.support.openai_server import FakeOpenAIServer, image_bytes, last_user_text
from tests.test_e2e_openai import evalkit, load_jsonl, run_args

MC = "\nAnswer with the option's letter from the given choices directly."


def colours(body: dict) -> list[str]:
    """The colour at the centre of each image the client sent, in order."""
    seen = []
    for data in image_bytes(body):
        img = Image.open(io.BytesIO(data)).convert("RGB")
        centre = img.getpixel((img.width // 2, img.height // 2))
        seen.append(
            min(COLOURS, key=lambda c: sum((a - b) ** 2 for a, b in zip(COLOURS[c], centre, strict=True)))
        )
    return seen


# question opening -> reply (the MMMU painting question's reply depends on the images it received)
REPLIES = {
    # AI2D: right, wrong, unparsed, right
    "Which colour fills the diagram?": "A",
    "What does the arrow show?": "The answer is B",
    "Which stage comes first?": "I don't know",
    "What is label E?": "(D)",
    # MMStar: right (letter), right (option text), right, wrong, unparsed
    "What is the main colour": "A",
    "Which topic fits": "A plain, blue field",
    "What emotion": "C",
    "How many sides": "C",
    "Is the mean of the bars": "Not sure",
    # MMMU: right, right, right (number), unparsed, right (number), wrong (text), right (one gold of a list)
    "Which picture shows a green field?": "C",
    "<image 1> What is the total revenue": "The total revenue is $1,000.",
    "<image 1> What does the table cost?": "I cannot tell",
    "<image 1> What is x?": "x = 3.5",
    "<image 1> Which theorem applies?": "Thales theorem",
    "<image 1> How often is the shop open?": "It is open 24/7",
}


def reply(body: dict) -> str:
    text = last_user_text(body)
    if text.startswith("Compare <image 2> with <image 1>."):
        return "(B)" if colours(body) == ["red", "blue"] else "(A)"  # B only with image_1, image_2 in order
    return next(r for opening, r in REPLIES.items() if text.startswith(opening))


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    write_ai2d(root)
    write_mmstar(root)
    write_mmmu(root)
    return root


def test_ai2d_mmstar_mmmu_end_to_end(data_root: Path, tmp_path: Path) -> None:
    with FakeOpenAIServer(reply) as server:
        result = evalkit(*run_args(server, data_root, tmp_path / "out", "ai2d,mmstar,mmmu_val"))
        assert result.returncode == 0, result.stderr
        bodies = server.bodies
    assert len(bodies) == 4 + 5 + 7
    assert all(b["max_tokens"] == 128 and b["temperature"] == 0 for b in bodies)
    by_text = {last_user_text(b): b for b in bodies}

    painting = next(b for t, b in by_text.items() if t.startswith("Compare <image 2>"))
    assert colours(painting) == ["red", "blue"]  # image_1 then image_2, though <image 2> is named first
    assert all(Image.open(io.BytesIO(d)).size == (40, 40) for d in image_bytes(painting))  # llava: pad
    field = next(b for t, b in by_text.items() if t.startswith("Which picture shows"))
    assert colours(field) == ["green", "red", "yellow"]  # markers in the options; image_4 unnamed, not sent
    assert "What does the arrow show?\nA. eats\nB. is eaten by\nC. lives in\nD. grows" + MC in by_text
    assert "<image 1> What is x?\nAnswer the question using a single word or phrase." in by_text  # llava
    assert (
        "Compare <image 2> with <image 1>. Which painting is older?\nA. The red one\nB. The blue one\n"
        "C. Both are from 1900" + MC in by_text
    )

    run = tmp_path / "out" / "tiny-test"
    metrics = {t: json.loads((run / t / "metrics.json").read_text()) for t in ("ai2d", "mmstar", "mmmu_val")}
    assert metrics["ai2d"]["metrics"] == {"accuracy": 50.0, "unparsed": 1, "failed": 0}
    star = metrics["mmstar"]["metrics"]
    assert (star["accuracy"], star["macro_accuracy"], star["unparsed"]) == (60.0, 50.0, 1)  # l2: 100,100,0,0
    assert (star["coarse_perception"], star["math"], star["l2_geometry"]) == (100.0, 0.0, 0.0)
    assert metrics["mmstar"]["primary"] == "accuracy"
    mmmu = metrics["mmmu_val"]["metrics"]
    assert mmmu == {
        "accuracy": pytest.approx(500 / 7),  # 5 of 7
        "art_and_design": 100.0,
        "business": 50.0,
        "science": pytest.approx(200 / 3),
        "accounting": 50.0,
        "art_theory": 100.0,
        "math": pytest.approx(200 / 3),
        "unparsed": 1,
        "failed": 0,
    }
    records = {r["id"]: r for r in load_jsonl(run / "mmmu_val" / "predictions.jsonl")}
    assert (records["validation_Accounting_1"]["answer"], records["validation_Accounting_1"]["parse"]) == (
        "1000.0",
        "open_number",
    )
    assert records["validation_Art_Theory_1"]["parse"] == "mmmu_official"
    assert records["validation_Accounting_2"]["parse"] == "unparsed"


def test_lmms_eval_protocol_prompts_limits_and_macro_headline(data_root: Path, tmp_path: Path) -> None:
    with FakeOpenAIServer(reply) as server:
        args = run_args(server, data_root, tmp_path / "out", "ai2d,mmstar", "--protocol", "lmms-eval")
        result = evalkit(*args)
        assert result.returncode == 0, result.stderr
        bodies = server.bodies
    tokens = {last_user_text(b): b["max_tokens"] for b in bodies}
    assert tokens["What is label E?\nA. stem\nB. root\nC. leaf\nD. flower" + MC] == 16
    lmms = "\nAnswer with the option's letter from the given choices directly"
    assert tokens["Is the mean of the bars above 10?" + lmms] == 1024
    painted = [Image.open(io.BytesIO(d)).size for b in bodies for d in image_bytes(b)]
    assert set(painted) == {(40, 24)}  # native: no padding
    run = tmp_path / "out" / "tiny-test"
    ai2d = json.loads((run / "ai2d" / "metrics.json").read_text())
    # lmms-eval: "A" right, "The answer is B" / "I don't know" no letter, "(D)" right once punctuation goes
    assert ai2d["metrics"]["accuracy"] == 50.0 and ai2d["metrics"]["unparsed"] == 2
    star = json.loads((run / "mmstar" / "metrics.json").read_text())
    # MMStar rule: "A" right, "A plain, blue field" reads A (wrong), "C" right, "C" wrong, "Not sure" unparsed
    assert star["primary"] == "accuracy"  # lmms-eval's macro mean over l2 categories: 50, 100, 0, 0
    assert (star["metrics"]["accuracy"], star["metrics"]["micro_accuracy"]) == (37.5, 40.0)
