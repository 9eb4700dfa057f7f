"""TextVQA val, GQA and HallusionBench end to end: the CLI and the openai backend against a real HTTP server
on 127.0.0.1 whose 'model' replies in a scripted style per question (HallusionBench: per question and the
colour it sees), under both protocols; prompts (the OCR line), generation limits, images and metrics
checked by hand."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from tests.support.fixtures_vqa2 import write_gqa, write_hallusionbench, write_textvqa
from tests.support.openai_server import FakeOpenAIServer, image_bytes, last_user_text
from tests.test_e2e_openai import evalkit, load_jsonl, run_args, seen_colour

SHORT = "\nAnswer the question using a single word or phrase."
TASKS = "textvqa_val,gqa,hallusionbench"

# TextVQA, by a marker in the lower-cased prompt (lmms-eval capitalises the question)
TEXTVQA = {
    "brand is the camera": "Dakota.",  # "dakota": 7 annotators -> 1.0
    "kind of camera": "Digital",  # 2 annotators -> (2*1/3 + 8*2/3)/10 = 0.6
    "number is on the jersey": "Two",  # "2": 6 annotators -> 1.0
    "stop sign say": "Stop ahead",  # 3 annotators -> (3*2/3 + 7)/10 = 0.9
    "colour is the sign": "",  # empty: scored as "", which no annotator gave: 0
}
GQA = {
    "Is the picture red?": "Yes.",  # verify, right under both
    "Who is wearing the dress?": "The woman.",  # query, wrong under both
    "Is the cup blue or green?": "Blue!",  # choose: right only under lmms-eval
    "Are there both cups and plates?": "no",  # logical, right
    "Do the cup and the plate have the same colour?": "",  # compare: unparsed
    "What is the man wearing?": "T-shirt...",  # query, right under both
}
HALLUSION = {  # (question, colour seen) -> reply
    ("Is the image red?", "red"): "Yes, it is red.",
    ("Is the image blue?", "red"): "No.",
    ("Is the image red?", "blue"): "Yes",
    ("Is the image blue?", "blue"): "I think so: yes and no.",
    ("Is the chart green?", "green"): "**Yes**",
    ("Is the chart yellow?", "green"): "There are no yellow eyes.",
    ("Is the figure yellow?", "yellow"): "Yes.",
}


def task_of(prompt: str) -> str:
    if not prompt.endswith(SHORT):
        return "hallusionbench"
    return "textvqa_val" if any(m in prompt.lower() for m in TEXTVQA) else "gqa"


def scripted_reply(body: dict) -> str:
    prompt = last_user_text(body)
    task = task_of(prompt)
    if task == "hallusionbench":
        return HALLUSION[(prompt, seen_colour(body))]
    if task == "textvqa_val":
        (reply,) = [r for marker, r in TEXTVQA.items() if marker in prompt.lower()]
        return reply
    return GQA[prompt.removesuffix(SHORT)]


EXPECTED = {
    "llava": {
        # (1.0 + 0.6 + 1.0 + 0.9 + 0) / 5 = 70%; the empty reply is scored as "" (no annotator said it)
        "textvqa_val": {"accuracy": 70.0, "unparsed": 0, "failed": 0},
        # right: verify "Yes.", logical "no", query "T-shirt..." -> 3/6; "Blue!" keeps its "!"
        "gqa": {
            "accuracy": 50.0,
            "choose": 0.0,
            "compare": 0.0,
            "logical": 100.0,
            "query": 50.0,
            "verify": 100.0,
            "unparsed": 1,
            "failed": 0,
        },
        # yes_no_words: 4/7 right; figures 2/4 whole; questions 2/5 right on all figures (test_hallusionbench)
        "hallusionbench": {"aacc": 57.142857, "facc": 50.0, "qacc": 40.0, "unparsed": 2, "failed": 0},
    },
    "lmms-eval": {
        "textvqa_val": {"accuracy": 70.0, "unparsed": 0, "failed": 0},
        # "Blue!" -> "blue" right as well: 4/6
        "gqa": {
            "accuracy": 66.666667,
            "choose": 100.0,
            "compare": 0.0,
            "logical": 100.0,
            "query": 50.0,
            "verify": 100.0,
            "unparsed": 1,
            "failed": 0,
        },
        # yes_no_contains: 5/7 right; figures 2/4; questions 3/5
        "hallusionbench": {"aacc": 71.428571, "facc": 50.0, "qacc": 60.0, "unparsed": 0, "failed": 0},
    },
}
PROMPTS = {  # prompts the server must have received
    "llava": [
        "what brand is the camera?\nReference OCR token: DAKOTA, DIGITAL, Single-Use, Camera" + SHORT,
        "what number is on the jersey?\nReference OCR token: " + SHORT,  # no OCR tokens: the line stays
        "what does the STOP sign say?\nReference OCR token: STOP, AHEAD" + SHORT,
        "Who is wearing the dress?" + SHORT,
        "Is the chart yellow?",
    ],
    "lmms-eval": [
        "What brand is the camera?" + SHORT,
        "What number is on the jersey?" + SHORT,
        "What does the stop sign say?" + SHORT,
        "Who is wearing the dress?" + SHORT,
        "Is the chart yellow?",
    ],
}
MAX_TOKENS = {
    "llava": {"textvqa_val": 128, "gqa": 128, "hallusionbench": 128},
    "lmms-eval": {"textvqa_val": 1024, "gqa": 16, "hallusionbench": 128},
}
PRIMARY = {"textvqa_val": "accuracy", "gqa": "accuracy", "hallusionbench": "aacc"}
COUNTS = {"textvqa_val": 5, "gqa": 6, "hallusionbench": 7}


@pytest.mark.parametrize("protocol", ["llava", "lmms-eval"])
def test_vqa_tasks_end_to_end(protocol: str, tmp_path: Path) -> None:
    root = tmp_path / "data"
    for write in (write_textvqa, write_gqa, write_hallusionbench):
        write(root)
    with FakeOpenAIServer(scripted_reply) as server:
        result = evalkit(*run_args(server, root, tmp_path / "out", TASKS, "--protocol", protocol))
        assert result.returncode == 0, result.stderr
        bodies = server.bodies
    assert len(bodies) == 5 + 6 + 7  # GQA's unbalanced and HallusionBench's text-only questions never sent
    prompts = [last_user_text(b) for b in bodies]
    assert all(p in prompts for p in PROMPTS[protocol])
    assert any("Reference OCR token: " in p for p in prompts) == (protocol == "llava")
    for body, prompt in zip(bodies, prompts, strict=True):
        assert body["max_tokens"] == MAX_TOKENS[protocol][task_of(prompt)] and body["temperature"] == 0
        (data,) = image_bytes(body)
        size = Image.open(io.BytesIO(data)).size
        assert size == ((40, 40) if protocol == "llava" else (40, 24))  # pad to a square / native

    run = tmp_path / "out" / "tiny-test"
    for task, expected in EXPECTED[protocol].items():
        record = json.loads((run / task / "metrics.json").read_text())
        assert record["metrics"] == expected, task
        assert record["primary"] == PRIMARY[task] and record["protocol"] == protocol
        assert record["n"] == COUNTS[task] and record["data"]["format"] == "authors"
        records = load_jsonl(run / task / "predictions.jsonl")
        assert sum(r["parse"] == "unparsed" for r in records) == expected["unparsed"]
        assert all(r["prompt"] in prompts for r in records)
