"""The judge matcher: replies the rules cannot read, matched by a judge (a real server on 127.0.0.1)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from evalkit.judging import match_unparsed
from evalkit.records import Prediction
from evalkit.scoring.judge import Judge, JudgeConfig
from tests.support.fixtures import pope_items, write_pope
from tests.support.openai_server import FakeOpenAIServer, last_user_text
from tests.test_e2e_openai import colour_reply, evalkit, load_jsonl


def matcher_reply(body: dict) -> str:
    """A judge: yes/no from the reply's first word; for options, the letter the reply points to, else Z."""
    reply = re.search(r"Reply: (.*)\n", last_user_text(body)).group(1)
    if "Options:" not in last_user_text(body):
        return {"Yes,": "Yes", "No,": "No"}.get(reply.split()[0], "Unknown")
    letters = re.findall(r"^([A-Z])\. ", last_user_text(body), re.M)
    return {"the first one": letters[0], "the last one": letters[-1], "the seventh one": "G"}.get(reply, "Z")


def wordy(body: dict) -> str:
    """A model that answers right, but in words lmms-eval's exact-match POPE rule cannot read."""
    return "Yes, it is." if colour_reply(body) == "Yes" else "No, it is not."


def test_pope_replies_matched_only_with_the_matcher(tmp_path: Path) -> None:
    write_pope(tmp_path / "data")
    env = {"EVALKIT_CACHE": str(tmp_path / "cache")}
    with FakeOpenAIServer(wordy) as model, FakeOpenAIServer(matcher_reply) as judge:
        base = [
            "run",
            "--model",
            "openai:m",
            "--tasks",
            "pope",
            "--protocol",
            "lmms-eval",
            "--data-root",
            str(tmp_path / "data"),
            "--base-url",
            model.base_url,
            "--output",
            str(tmp_path / "out"),
        ]
        judged = [*base, "--judge", "j", "--judge-base-url", judge.base_url]
        plain = evalkit(*base, env=env)
        assert plain.returncode == 0, plain.stderr
        pope = tmp_path / "out" / "m" / "pope"
        before = json.loads((pope / "metrics.json").read_text())
        assert evalkit(*judged, env=env).returncode == 0  # a judge alone does not change a rule-scored task
        assert judge.calls == 0 and json.loads((pope / "metrics.json").read_text()) == before
        model_calls = model.calls
        matched = evalkit(*judged, "--judge-matcher", env=env)  # the finished task is re-entered to match
        assert matched.returncode == 0, matched.stderr
        assert model.calls == model_calls  # nothing regenerated
        calls = judge.calls
        rescored = evalkit(
            "score",
            "--task",
            "pope",
            "--predictions",
            str(pope / "predictions.jsonl"),
            "--judge",
            "j",
            "--judge-base-url",
            judge.base_url,
            "--judge-matcher",
            "--output",
            str(tmp_path / "s"),
            env=env,
        )
        assert rescored.returncode == 0, rescored.stderr
        assert judge.calls == calls  # the same replies: every verdict from the cache
    n = len(pope_items())
    assert before["metrics"]["unparsed"] == n and before["metrics"]["accuracy"] == 0.0  # exact match: none
    record = json.loads((pope / "metrics.json").read_text())
    assert record["metrics"]["unparsed"] == 0 and record["metrics"]["all_accuracy"] == 100.0
    assert record["judge"]["matcher"] is True and record["judge"]["matched"] == n
    assert record["judge"]["graded_by"] == ["j"]
    first = load_jsonl(pope / "predictions.jsonl")[0]
    assert first["parse"] == "judge_matcher" and first["meta"]["matcher"]["verdict"] in ("yes", "no")
    assert json.loads((tmp_path / "s" / "metrics.json").read_text())["metrics"]["all_accuracy"] == 100.0


def test_a_request_the_judge_rejects_is_a_counted_failure(tmp_path: Path) -> None:
    """HTTP 400 (say, a reply too long for the judge's context) cannot succeed later: not left pending."""
    from evalkit.judging import judge_records
    from evalkit.protocols import PROTOCOLS
    from evalkit.registry import get_task
    from evalkit.runner import make_prediction
    from tests.support.fixtures_vqa2 import write_hallusionbench
    from tests.support.openai_server import prompt_contains

    task = get_task("hallusionbench_judge")
    write_hallusionbench(tmp_path)
    samples = task.load(tmp_path / "hallusionbench").samples
    variant = task.variant("llava")
    records = [
        make_prediction(task, variant, PROTOCOLS["llava"], s, "", "huge" if i == 0 else "fine")
        for i, s in enumerate(samples)
    ]
    with FakeOpenAIServer(lambda body: "Correct.") as server:
        server.fail_when(prompt_contains("Model's answer: huge"), status=400, times=None)
        out = judge_records(task, records, Judge(JudgeConfig("j", server.base_url, cache_dir=tmp_path / "c")))
    assert out[0].parse == "judge_failure" and "HTTP 400" in out[0].meta["judge"]["error"]
    assert all(r.parse == "judge" and r.score == 1.0 for r in out[1:])
    assert task.aggregate_for("llava")(out)["pending"] == 0


def _mc(rid: str, output: str, target: str) -> Prediction:
    options = {"A": "a red apple", "B": "a green pear", "C": "blue sky"}
    return Prediction(
        id=rid,
        prompt="",
        output=output,
        answer=None,
        score=0.0,
        parse="unparsed",
        meta={"question": "Which is shown?", "options": options, "target": target},
    )


def test_option_matcher_by_hand(tmp_path: Path) -> None:
    records = [
        _mc("1", "the last one", "C"),  # judge: C -> right
        _mc("2", "the first one", "B"),  # judge: A -> wrong, but read
        _mc("3", "a banana", "A"),  # judge: Z -> none of the options: stays unanswered, wrong
        _mc("4", "the seventh one", "A"),  # judge: G, no option: stays unparsed
        _mc("5", "C", "C").model_copy(
            update={"answer": "C", "score": 1.0, "parse": "lone_letter"}
        ),  # not asked
    ]
    with FakeOpenAIServer(matcher_reply) as server:
        judge = Judge(JudgeConfig(model="j", base_url=server.base_url, cache_dir=tmp_path / "cache"))
        out = match_unparsed(records, judge, "option")
        assert server.calls == 4  # one verdict each ("G" reads as a verdict; it names no option)
        again = match_unparsed(records, judge, "option")
        assert server.calls == 4 and again == out  # every verdict from the cache
    assert [(r.answer, r.score, r.parse) for r in out] == [
        ("C", 1.0, "judge_matcher"),
        ("A", 0.0, "judge_matcher"),
        (None, 0.0, "judge_matcher_none"),
        (None, 0.0, "unparsed"),
        ("C", 1.0, "lone_letter"),
    ]
    assert out[0].meta["matcher"] == {"model": "j", "verdict": "C", "reply": "C"}
