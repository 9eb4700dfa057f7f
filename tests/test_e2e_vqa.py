"""VQAv2 and VizWiz end to end: the CLI and the openai backend against a real HTTP server on 127.0.0.1 with
scripted replies, under both protocols; prompts, generation limits, images and metrics checked by hand; then
both submission exports through the CLI (VizWiz refuses a run with a failed question until it is resumed)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from tests.support.fixtures_vqa import (
    TEST2015_ORDER,
    write_vizwiz_test,
    write_vizwiz_val,
    write_vqav2_testdev,
    write_vqav2_val,
)
from tests.support.openai_server import FakeOpenAIServer, image_bytes, last_user_text, prompt_contains
from tests.test_e2e_openai import evalkit, load_jsonl, run_args

TASKS = "vqav2_val,vqav2_testdev,vizwiz_val,vizwiz_test"
UNANSWERABLE = "\nWhen the provided information is insufficient, respond with 'Unanswerable'."
SHORT = "\nAnswer the question using a single word or phrase."

REPLIES = {  # the question (lower-cased: lmms-eval capitalises VizWiz questions) -> the scripted reply
    # VQAv2 val: 1, 1, 1, 0.6, 0 (llava: "man 's") / 1 (lmms-eval), 1, 1, 0
    "is the image red?": "yes",
    "how many dogs are there?": "Two",
    "how many people live here?": "1,000",
    "what is the ratio?": "3",
    "whose hat is this?": "The man's.",
    "what is he wearing?": "T-Shirt",
    "do you know the answer?": "dont know",
    "what colour is the sky?": "The.",
    # VQAv2 test-dev ("What fails here?" always fails: HTTP 500)
    "is this a test?": "Yes.",
    "how many dogs are in the test?": "Two dogs",
    "whose hat is in the test?": "A Man's hat?",
    "what is unclear?": "?",
    # VizWiz val: 0.3, 1, 1, 1, 0.9
    "what is this?": "Soda",
    "is this blue?": "Yes",
    "how many fingers?": "2",
    "what does the label say?": "Unanswerable",
    "what's the expiry date?": "12/2024",
    # VizWiz test ("Is the light on?" fails on the first run only)
    "what is in this can?": "Soup can.",
    "what colour is this shirt?": "Red",
    "is the light on?": "Yes",
}


def scripted_reply(body: dict) -> str:
    return REPLIES[last_user_text(body).split("\n", 1)[0].lower()]


def expected(protocol: str) -> dict[str, dict[str, float]]:
    llava = protocol == "llava"
    return {
        "vqav2_val": {
            "accuracy": 70.0 if llava else 82.5,  # 1 + 1 + 1 + 0.6 + (0 or 1) + 1 + 1 + 0, over 8
            "yes_no": 100.0,
            "number": 86.666667,  # (1 + 1 + 0.6) / 3
            "other": 50.0 if llava else 75.0,  # ((0 or 1) + 1 + 1 + 0) / 4
            "unparsed": 0,  # "The." normalises to "": a wrong answer, not an unparsed reply
            "failed": 0,
        },
        # yes, 2 dogs, man 's hat answered; "?" empty once processed; one failed
        "vqav2_testdev": {"unparsed": 0, "failed": 1, "answered": 3, "empty": 1},
        "vizwiz_val": {
            "accuracy": 84.0,  # (0.3 + 1 + 1 + 1 + 0.9) / 5
            "other": 60.0,  # (0.3 + 0.9) / 2
            "yes_no": 100.0,
            "number": 100.0,
            "unanswerable": 100.0,
            "unparsed": 0,
            "failed": 0,
        },
        "vizwiz_test": {"unparsed": 0, "failed": 0, "answered": 3, "empty": 0},
    }


@pytest.mark.parametrize("protocol", ["llava", "lmms-eval"])
def test_vqa_tasks_end_to_end_and_exports(protocol: str, tmp_path: Path) -> None:
    root, out = tmp_path / "data", tmp_path / "out"
    for write in (write_vqav2_val, write_vqav2_testdev, write_vizwiz_val, write_vizwiz_test):
        write(root)
    with FakeOpenAIServer(scripted_reply) as server:
        args = run_args(server, root, out, TASKS, "--protocol", protocol, "--max-retries", "0")
        server.fail_when(prompt_contains("What fails here?"), status=500, times=None)
        server.fail_when(prompt_contains("Is the light on?"), status=500, times=1)
        first = evalkit(*args)
        assert first.returncode == 0, first.stderr
        bodies = server.bodies
        assert len(bodies) == 8 + 5 + 5 + 3

        run = out / "tiny-test"
        export_vizwiz = ["export", "vizwiz", str(run / "vizwiz_test"), "--out", str(tmp_path / "vizwiz.json")]
        refused = evalkit(*export_vizwiz)
        assert refused.returncode == 2 and "1 of 3 VizWiz test questions have no answer" in refused.stderr
        assert "(0 not run, 1 failed" in refused.stderr and "Traceback" not in refused.stderr

        calls = server.calls
        again = evalkit(*args)  # resumes: only the two failed questions are asked again
        assert again.returncode == 0, again.stderr
        assert server.calls - calls == 2

    for body in bodies:
        prompt = last_user_text(body)
        vizwiz = UNANSWERABLE in prompt
        assert prompt.endswith((UNANSWERABLE if vizwiz else "") + SHORT)
        tokens = {"llava": 128, "lmms-eval": 1024 if vizwiz else 16}[protocol]
        assert body["max_tokens"] == tokens and body["temperature"] == 0
        (data,) = image_bytes(body)
        assert Image.open(io.BytesIO(data)).size == ((40, 40) if protocol == "llava" else (40, 24))
    prompts = {last_user_text(b) for b in bodies}
    blue = "IS THIS BLUE?" if protocol == "llava" else "Is this blue?"  # lmms-eval: str.capitalize()
    assert blue + UNANSWERABLE + SHORT in prompts and "Is the image red?" + SHORT in prompts

    for task, metrics in expected(protocol).items():
        record = json.loads((run / task / "metrics.json").read_text())
        assert record["metrics"] == metrics, task
        assert record["protocol"] == protocol and record["data"]["format"] == "authors"
    records = {r["id"]: r for r in load_jsonl(run / "vqav2_val" / "predictions.jsonl")}
    assert records["1008"]["parse"] != "unparsed" and records["1008"]["answer"] == ""
    assert records["1004"]["score"] == pytest.approx(0.6)
    assert records["1003"]["meta"]["answers"][0] == "1,000"  # records keep the answers: re-scorable

    args = ["export", "vqav2", str(run / "vqav2_testdev"), "--out", str(tmp_path / "vqav2.json")]
    refused = evalkit(*args)  # "What fails here?" always fails: no silent blank answer
    assert refused.returncode == 2 and "1 of 5 VQAv2 test-dev questions have no answer" in refused.stderr
    vqav2 = evalkit(*args, "--allow-missing")
    assert vqav2.returncode == 0, vqav2.stderr
    entries = json.loads((tmp_path / "vqav2.json").read_text())
    assert [e["question_id"] for e in entries] == TEST2015_ORDER  # every test2015 question, once
    answers = {e["question_id"]: e["answer"] for e in entries}
    assert answers == {
        3001: "",
        2001: "yes",
        2002: "2 dogs",
        3002: "",
        2003: "",
        2004: "man 's hat",
        2005: "",
    }

    done = evalkit(*export_vizwiz)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "vizwiz.json").read_text()) == [
        {"image": "VizWiz_test_00000000.jpg", "answer": "soup can"},
        {"image": "VizWiz_test_00000001.jpg", "answer": "red"},
        {"image": "VizWiz_test_00000002.jpg", "answer": "yes"},
    ]
