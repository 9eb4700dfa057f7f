"""Judged tasks end to end through the CLI: a model server and a judge server, both real HTTP servers on
127.0.0.1; scripted grades, a grade that never parses, a judge that fails until the next run, the cache on
re-scoring, and the refusal to run without a judge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.fixtures_judged import FIXTURES
from tests.support.openai_server import FakeOpenAIServer, last_user_text, prompt_contains
from tests.test_e2e_openai import evalkit, load_jsonl

ANSWERS = {  # question -> the model's reply
    "Which two colours are shown?": "red and blue",
    "What colour is the picture?": "navy",
    "What is 3 + 4 as written?": "8",
    "Describe the picture in detail.": "a yellow shape",
    "What colour is the card?": "red",
    "Describe this photo in detail.": "a card",
    "Why might someone keep this card?": "as a sample",
    "Can the car go?": "yes",
    "What should the driver watch for?": "people",
}
GRADES = {  # question -> the judge's reply (MM-Vet: a number; LLaVA-Bench: "reference model" scores)
    "Which two colours are shown?": "1.0",
    "What colour is the picture?": "1.0",
    "What is 3 + 4 as written?": "about right",  # never parses: 5 tries, then a counted failure
    "Describe the picture in detail.": "0.4",
    "What colour is the card?": "8 6\nAssistant 2 is brief.",
    "Describe this photo in detail.": "10 5\nToo short.",
    "Why might someone keep this card?": "8 8\nBoth fine.",
    "Can the car go?": "6 9\nAssistant 2 is better.",
    "What should the driver watch for?": "Assistant 1 did better.",  # never parses: excluded, counted
}
KEY = "sk-judge-secret-777"


def model_reply(body: dict) -> str:
    text = last_user_text(body)
    return next(a for q, a in ANSWERS.items() if text.startswith(q))


def judge_reply(body: dict) -> str:
    text = last_user_text(body)
    return next(g for q, g in GRADES.items() if q in text)


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    FIXTURES["mmvet"](root)
    FIXTURES["llava_bench_wild"](root)
    return root


def test_judged_run_rescore_and_refusal(data_root: Path, tmp_path: Path) -> None:
    env = {"EVALKIT_CACHE": str(tmp_path / "cache"), "OPENAI_API_KEY": KEY}
    with FakeOpenAIServer(model_reply) as model, FakeOpenAIServer(judge_reply) as judge:
        base = [
            "run",
            "--model",
            "openai:m",
            "--tasks",
            "mmvet,llava_bench_wild",
            "--data-root",
            str(data_root),
            "--output",
            str(tmp_path / "out"),
            "--base-url",
            model.base_url,
        ]
        refused = evalkit(*base, env=env)
        assert refused.returncode == 2 and "need an LLM judge" in refused.stderr and model.calls == 0

        judge.fail_when(prompt_contains("What colour is the picture?"), status=500, times=6)  # beyond retries
        args = [*base, "--judge", "judge-model", "--judge-base-url", judge.base_url]
        first = evalkit(*args, env=env)
        assert first.returncode == 0, first.stderr
        mmvet = json.loads((tmp_path / "out" / "m" / "mmvet" / "metrics.json").read_text())
        assert mmvet["judge"]["pending"] == 1  # that grade could not be had: graded by the next run
        assert mmvet["metrics"]["total"] == pytest.approx((1 + 0 + 0.4) / 3 * 100)

        model_calls = model.calls
        second = evalkit(*args, "--judge-price", "0.5,1.5", env=env)
        assert second.returncode == 0, second.stderr
        assert (
            "judge judge-model:" in second.stdout
            and "from the cache" in second.stdout
            and "about $" in second.stdout
        )
        assert model.calls == model_calls  # nothing regenerated: only the pending grade was asked
        mmvet = json.loads((tmp_path / "out" / "m" / "mmvet" / "metrics.json").read_text())
        bench = json.loads((tmp_path / "out" / "m" / "llava_bench_wild" / "metrics.json").read_text())
        never = [b for b in judge.bodies if "What is 3 + 4 as written?" in last_user_text(b)]
        assert [b["temperature"] for b in never] == [0.0, 0.5, 1.0, 1.5, 2.0]  # rising, then given up

        calls = judge.calls
        rescored = evalkit(
            "score",
            "--task",
            "mmvet",
            "--predictions",
            str(tmp_path / "out" / "m" / "mmvet" / "predictions.jsonl"),
            "--judge",
            "judge-model",
            "--judge-base-url",
            judge.base_url,
            "--output",
            str(tmp_path / "s"),
            env=env,
        )
        assert rescored.returncode == 0, rescored.stderr
        assert judge.calls == calls  # every grade (and every unparseable reply) came from the cache
        judge_url = judge.base_url

    # the judge's server is gone: re-scoring still works, every grade from the cache, no endpoint asked
    records_file = tmp_path / "out" / "m" / "mmvet" / "predictions.jsonl"
    offline = evalkit(
        "score", "--task", "mmvet", "--predictions", str(records_file),
        "--judge", "judge-model", "--judge-base-url", judge_url, "--output", str(tmp_path / "offline"),
        env=env,
    )  # fmt: skip
    assert offline.returncode == 0, offline.stderr
    assert json.loads((tmp_path / "offline" / "metrics.json").read_text())["metrics"][
        "total"
    ] == pytest.approx(60.0)

    # MM-Vet: grades 1.0, 1.0, failure (0), 0.4 -> total 2.4 / 4; rec: v1_0, v1_1, v1_3; ocr, math: v1_2
    assert mmvet["primary"] == "total" and mmvet["judge"]["model"] == "judge-model"
    m = mmvet["metrics"]
    assert m["total"] == pytest.approx(60.0) and m["rec"] == pytest.approx(80.0) and m["spat"] == 100.0
    assert (m["ocr"], m["math"], m["gen"], m["know"]) == (0.0, 0.0, pytest.approx(40.0), pytest.approx(40.0))
    assert m["judge_failures"] == 1 and mmvet["judge"]["pending"] == 0
    usage = mmvet["judge"]["usage"]  # the second run's: only the grade left pending was asked (graded ones
    assert usage["calls"] == 1 and usage["cache_hits"] == 0  # are not asked again), priced 0.5 / 1.5 per 1k
    assert usage["cost_usd"] == pytest.approx(
        (usage["prompt_tokens"] * 0.5 + usage["completion_tokens"] * 1.5) / 1000
    )
    # LLaVA-Bench: reviews (ref, model) 8 6, 10 5, 8 8, 6 9; the fifth never parses and is left out
    b = bench["metrics"]
    assert b["all"] == pytest.approx(100 * (6 + 5 + 8 + 9) / (8 + 10 + 8 + 6))  # 87.5
    assert b["conv"] == pytest.approx(100 * (6 + 9) / (8 + 6)) and b["detail"] == pytest.approx(50.0)
    assert b["complex"] == pytest.approx(100.0) and b["judge_failures"] == 1
    records = {r["id"]: r for r in load_jsonl(tmp_path / "out" / "m" / "mmvet" / "predictions.jsonl")}
    assert records["v1_3"]["meta"]["grade"] == 0.4 and records["v1_2"]["parse"] == "judge_failure"
    assert json.loads((tmp_path / "s" / "metrics.json").read_text())["metrics"]["total"] == pytest.approx(
        60.0
    )
    exported = evalkit(
        "export", "mmvet", str(tmp_path / "out" / "m" / "mmvet"), "--out", str(tmp_path / "mmvet.json")
    )
    assert exported.returncode == 0, exported.stderr
    assert json.loads((tmp_path / "mmvet.json").read_text()) == {  # every question, in the file's order
        "v1_0": "red and blue", "v1_1": "navy", "v1_2": "8", "v1_3": "a yellow shape"}  # fmt: skip
    for path in tmp_path.rglob("*"):
        assert path.is_dir() or KEY not in path.read_text(errors="replace")
