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


def test_pope_replies_matched_when_a_judge_is_configured(tmp_path: Path) -> None:
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
        ]
        plain = evalkit(*base, "--output", str(tmp_path / "plain"), env=env)
        assert plain.returncode == 0, plain.stderr
        judged = evalkit(
            *base,
            "--output",
            str(tmp_path / "judged"),
            "--judge",
            "j",
            "--judge-base-url",
            judge.base_url,
            env=env,
        )
        assert judged.returncode == 0, judged.stderr
        calls = judge.calls
        rescored = evalkit(
            "score",
            "--task",
            "pope",
            "--predictions",
            str(tmp_path / "plain" / "m" / "pope" / "predictions.jsonl"),
            "--judge",
            "j",
            "--judge-base-url",
            judge.base_url,
            "--output",
            str(tmp_path / "s"),
            env=env,
        )
        assert rescored.returncode == 0, rescored.stderr
        assert judge.calls == calls  # the same replies: every verdict from the cache
    n = len(pope_items())
    plain_m = json.loads((tmp_path / "plain" / "m" / "pope" / "metrics.json").read_text())
    assert plain_m["metrics"]["unparsed"] == n and plain_m["metrics"]["accuracy"] == 0.0  # exact match: none
    record = json.loads((tmp_path / "judged" / "m" / "pope" / "metrics.json").read_text())
    assert record["metrics"]["unparsed"] == 0 and record["metrics"]["all_accuracy"] == 100.0
    assert record["judge"]["model"] == "j" and record["judge"]["matched"] == n
    first = load_jsonl(tmp_path / "judged" / "m" / "pope" / "predictions.jsonl")[0]
    assert first["parse"] == "judge_matcher" and first["meta"]["matcher"]["verdict"] in ("yes", "no")
    assert json.loads((tmp_path / "s" / "scores.json").read_text())["metrics"]["all_accuracy"] == 100.0


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
        out = match_unparsed(records, judge)
        assert server.calls == 4  # one verdict each ("G" reads as a verdict; it names no option)
        again = match_unparsed(records, judge)
        assert server.calls == 4 and again == out  # every verdict from the cache
    assert [(r.answer, r.score, r.parse) for r in out] == [
        ("C", 1.0, "judge_matcher"),
        ("A", 0.0, "judge_matcher"),
        (None, 0.0, "judge_matcher_none"),
        (None, 0.0, "unparsed"),
        ("C", 1.0, "lone_letter"),
    ]
    assert out[0].meta["matcher"] == {"model": "j", "verdict": "C", "reply": "C"}
