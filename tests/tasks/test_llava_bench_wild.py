"""LLaVA-Bench-in-the-Wild: questions + context + GPT-4 answers (or the lmms-lab snapshot), prompts, the
review request built from a record (packaged and replaced rule), LLaVA's score-pair parser and the relative
scores by hand."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

import pytest

from evalkit.data.readers import Sample
from evalkit.errors import ConfigError, InputError
from evalkit.protocols import PROTOCOLS
from evalkit.records import JUDGE_FAILURE, PENDING_JUDGE, Prediction
from evalkit.registry import get_task
from evalkit.runner import make_prediction
from evalkit.task import pending_judge
from tests.support.fixtures_judged import write_llava_bench, write_llava_bench_parquet

BENCH = get_task("llava_bench_wild")
SYSTEM = "You are a helpful and precise assistant for checking the quality of the answer."


@pytest.fixture
def samples(tmp_path: Path) -> dict:
    write_llava_bench(tmp_path)
    return {s.id: s for s in BENCH.load(tmp_path / "llava_bench_wild").samples}


@pytest.fixture(autouse=True)
def _packaged_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVALKIT_LLAVA_BENCH_RULE", raising=False)


def test_joins_questions_captions_and_references(samples: dict, tmp_path: Path) -> None:
    assert list(samples) == ["0", "1", "2", "3", "4"]
    s = samples["3"]
    assert (s.question, s.target) == ("Can the car go?", "Yes, the light is green.")
    assert s.meta == {"category": "conv", "caption": "A green traffic light at night, seen from a car."}
    assert Path(s.images[0].path) == tmp_path / "llava_bench_wild" / "images" / "002.jpg"
    assert [samples[i].meta["category"] for i in samples] == ["conv", "detail", "complex", "conv", "complex"]


def test_snapshot_agrees_with_the_authors_files(tmp_path: Path, samples: dict) -> None:
    write_llava_bench_parquet(tmp_path / "hf")
    ds = BENCH.load(tmp_path / "hf" / "llava_bench_wild")
    assert ds.format == "hf-parquet"
    key = lambda s: (s.id, s.question, s.target, s.meta)  # noqa: E731
    assert [key(s) for s in ds.samples] == [key(s) for s in samples.values()]


def _rewrite(folder: Path, name: str, change: Callable[[list[dict]], list[dict]]) -> None:
    path = folder / name
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps(r) + "\n" for r in change(rows)))


def test_missing_pieces_are_named(tmp_path: Path) -> None:
    folder = write_llava_bench(tmp_path / "a")
    _rewrite(folder, "answers_gpt4.jsonl", lambda rows: [r for r in rows if r["question_id"] != 2])
    with pytest.raises(InputError, match=r"questions\.jsonl:3: question 2 has no reference answer"):
        BENCH.load(folder)
    folder = write_llava_bench(tmp_path / "b")
    _rewrite(folder, "context.jsonl", lambda rows: rows[:1])
    with pytest.raises(InputError, match=r"questions\.jsonl:4: image '002\.jpg' has no caption"):
        BENCH.load(folder)
    folder = write_llava_bench(tmp_path / "c")
    _rewrite(folder, "questions.jsonl", lambda rows: [r | {"category": "chat"} for r in rows])
    with pytest.raises(InputError, match="category 'chat' is not one of conv, detail, complex"):
        BENCH.load(folder)
    folder = write_llava_bench(tmp_path / "d")
    _rewrite(folder, "questions.jsonl", lambda rows: [r | {"image": "../../x.jpg"} for r in rows])
    _rewrite(folder, "context.jsonl", lambda rows: [r | {"image": "../../x.jpg"} for r in rows])
    with pytest.raises(InputError, match="escapes"):
        BENCH.load(folder)


def test_caption_list_is_joined_by_lines(tmp_path: Path) -> None:
    folder = write_llava_bench(tmp_path)
    _rewrite(folder, "context.jsonl", lambda rows: [r | {"caption": ["One.", "Two."]} for r in rows])
    assert BENCH.load(folder).samples[0].meta["caption"] == "One.\nTwo."


def test_prompts(samples: dict) -> None:
    assert {BENCH.variant(p).prompt(samples["1"]) for p in BENCH.protocols} == {
        "Describe this photo in detail."
    }
    assert (BENCH.variant("llava").max_new_tokens, BENCH.variant("llava").image_mode) == (1024, "crop")
    assert (BENCH.variant("lmms-eval").max_new_tokens, BENCH.variant("lmms-eval").image_mode) == (
        4096,
        "native",
    )
    assert all(v.score is pending_judge for v in BENCH.variants.values())


def _record(sample: Sample, output: str) -> Prediction:
    variant = BENCH.variant("llava")
    return make_prediction(BENCH, variant, PROTOCOLS["llava"], sample, variant.prompt(sample), output)


def test_review_request_from_a_record(samples: dict) -> None:
    assert BENCH.judged is not None and (BENCH.judged.tries, BENCH.judged.on_failure) == (5, "exclude")
    record = _record(samples["0"], "It is red.\n")
    assert (record.parse, record.answer) == (PENDING_JUDGE, None)
    req = BENCH.judged.request(record)
    assert (req.temperature, req.max_tokens) == (0.0, 1024)
    rule = files("evalkit").joinpath("data/prompts/llava_bench_rule.txt").read_text(encoding="utf-8").strip()
    assert req.messages == [
        {"role": "system", "content": SYSTEM},
        {
            "role": "user",
            "content": "[Context]\nA red square card lying on a white desk.\n\n"
            "[Question]\nWhat colour is the card?\n\n"
            "[Assistant 1]\nThe card is red.\n\n[End of Assistant 1]\n\n"
            "[Assistant 2]\nIt is red.\n\n[End of Assistant 2]\n\n"
            f"[System]\n{rule}\n\n",
        },
    ]


def test_packaged_rule_is_our_own() -> None:
    rule = files("evalkit").joinpath("data/prompts/llava_bench_rule.txt").read_text(encoding="utf-8")
    assert all(w in rule for w in ("helpfulness", "relevance", "accuracy", "level of detail", "1 to 10"))
    assert "first line" in rule and "We would like to request your feedback" not in rule


def test_rule_file_can_be_replaced(tmp_path: Path, samples: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    custom = tmp_path / "rule.txt"
    custom.write_text("Score both, 1-10, on line one.\n", encoding="utf-8")
    monkeypatch.setenv("EVALKIT_LLAVA_BENCH_RULE", str(custom))
    content = BENCH.judged.request(_record(samples["3"], "Yes.")).messages[1]["content"]
    assert content.endswith("[End of Assistant 2]\n\n[System]\nScore both, 1-10, on line one.\n\n")
    custom.write_text("  \n")
    with pytest.raises(ConfigError, match="the file is empty"):
        BENCH.judged.request(_record(samples["3"], "Yes."))
    monkeypatch.setenv("EVALKIT_LLAVA_BENCH_RULE", str(tmp_path / "absent.txt"))
    with pytest.raises(ConfigError, match=r"absent\.txt: cannot read it"):
        BENCH.judged.request(_record(samples["3"], "Yes."))


@pytest.mark.parametrize(
    ("reply", "scores"),
    [
        ("8 9\nbecause Assistant 2 is more detailed.", [8, 9]),
        ("8, 9", [8, 9]),  # commas become spaces (LLaVA's own split(' ') would see three fields here)
        ("8,9", [8, 9]),
        ("7.5 9\n", [7.5, 9]),
        ("10 3", [10, 3]),
        ("8", None),
        ("Assistant 1: 8", None),
        ("8 9 10", None),
        ("\n8 9", None),  # the first line is empty
        ("eight nine", None),
        ("nan 9", None),
        ("0 5", None),  # a zero reference score has no ratio
        ("8 -1", None),
        ("", None),
    ],
)
def test_parse_scores(reply: str, scores: list[float] | None) -> None:
    assert BENCH.judged.parse(reply) == scores


def test_score_is_model_over_reference() -> None:
    assert BENCH.judged.score([8.0, 6.0]) == 0.75


def _p(
    sid: str, category: str, grade: list[float] | None, parse: str = "judge", error: str | None = None
) -> Prediction:
    return Prediction(
        id=sid,
        prompt="",
        output="" if error else "an answer",
        answer=str(grade) if grade else None,
        score=grade[1] / grade[0] if grade else 0.0,
        parse=parse,
        meta={"target": "ref", "question": "q", "category": category, "caption": "c"}
        | ({"grade": grade} if grade else {}),
        error=error,
    )


def test_aggregate_by_hand() -> None:
    preds = [
        _p("0", "conv", [8, 6]),
        _p("1", "detail", [10, 5]),
        _p("2", "complex", [5, 4]),
        _p("3", "conv", [8, 8]),
        _p("4", "complex", None, JUDGE_FAILURE),  # excluded, counted (LLaVA would average in [-1, -1])
        _p("5", "conv", None, "failed", error="image not found"),  # no reply, no scores: excluded, counted
        _p("6", "detail", None, PENDING_JUDGE),  # not judged yet: only in `pending`
    ]
    metrics = BENCH.aggregate_for("llava")(preds)
    assert metrics == {
        # reference mean (8 + 10 + 5 + 8) / 4 = 7.75, model mean (6 + 5 + 4 + 8) / 4 = 5.75;
        # 5.75 / 7.75 = 23 / 31 = 74.1935...% (a ratio of means, not the mean of ratios, which is 76.25)
        "all": pytest.approx(100 * 23 / 31, abs=1e-6),
        "conv": 87.5,  # (6 + 8) / (8 + 8)
        "detail": 50.0,  # 5 / 10
        "complex": 80.0,  # 4 / 5
        "model_score": 57.5,  # 10 x 5.75
        "reference_score": 77.5,  # 10 x 7.75
        "judge_failures": 1,
        "pending": 1,
        "unparsed": 0,
        "failed": 1,
    }
    assert round(metrics["all"], 1) == 74.2  # LLaVA's summarize_gpt_review.py display
    assert BENCH.primary == "all"


def test_stale_grades_of_records_waiting_or_failed_are_ignored() -> None:
    # a re-scored record is pending again but keeps the old grade in meta until the judge has seen it
    stale = _p("0", "conv", [2, 9]).model_copy(update={"parse": PENDING_JUDGE, "answer": None, "score": 0.0})
    failed = _p("1", "conv", [2, 9]).model_copy(update={"parse": JUDGE_FAILURE, "answer": None, "score": 0.0})
    metrics = BENCH.aggregate_for("llava")([stale, failed, _p("2", "conv", [8, 6])])
    assert (metrics["all"], metrics["conv"], metrics["pending"], metrics["judge_failures"]) == (
        75.0,
        75.0,
        1,
        1,
    )


def test_aggregate_of_records_not_yet_judged(samples: dict) -> None:
    metrics = BENCH.aggregate_for("llava")([_record(s, "an answer") for s in samples.values()])
    assert metrics["pending"] == len(samples) and metrics["all"] == 0.0
    assert (metrics["unparsed"], metrics["failed"], metrics["judge_failures"]) == (0, 0, 0)
