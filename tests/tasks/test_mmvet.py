"""MM-Vet: mm-vet.json (or the lmms-lab snapshot), exact prompts, the grader request built from a record
(packaged and replaced prompt), the grade parser, and the aggregation by hand."""

from __future__ import annotations

import importlib
import json
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
from tests.support.fixtures_judged import mmvet_items, write_mmvet, write_mmvet_parquet

MMVET = get_task("mmvet")
MMVET_MODULE = importlib.import_module(MMVET.load.__module__)


@pytest.fixture
def samples(tmp_path: Path) -> dict:
    write_mmvet(tmp_path)
    return {s.id: s for s in MMVET.load(tmp_path / "mmvet").samples}


@pytest.fixture(autouse=True)
def _packaged_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVALKIT_MMVET_PROMPT", raising=False)


def test_reads_the_authors_file(samples: dict, tmp_path: Path) -> None:
    assert list(samples) == ["v1_0", "v1_1", "v1_2", "v1_3"]
    first = samples["v1_0"]
    assert (first.question, first.target) == ("Which two colours are shown?", "red<AND>blue")
    assert first.meta == {"capability": ["rec", "spat"], "imagename": "v1_0.png"}
    assert Path(first.images[0].path) == tmp_path / "mmvet" / "images" / "v1_0.png"
    assert samples["v1_2"].meta["capability"] == ["ocr", "math"]


def test_snapshot_agrees_with_the_authors_file(tmp_path: Path, samples: dict) -> None:
    write_mmvet_parquet(tmp_path / "hf")
    ds = MMVET.load(tmp_path / "hf" / "mmvet")
    assert ds.format == "hf-parquet"
    key = lambda s: (s.id, s.question, s.target, s.meta)  # noqa: E731
    assert [key(s) for s in ds.samples] == [key(s) for s in samples.values()]


def test_bad_entries_are_named(tmp_path: Path) -> None:
    folder = write_mmvet(tmp_path)
    data = json.loads((folder / "mm-vet.json").read_text())
    del data["v1_2"]["capability"]
    (folder / "mm-vet.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"mm-vet\.json: v1_2: missing field\(s\) capability"):
        MMVET.load(folder)
    data["v1_2"] |= {"capability": [], "imagename": "x.png"}
    (folder / "mm-vet.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match="v1_2: capability must be a non-empty list"):
        MMVET.load(folder)
    data["v1_2"] |= {"capability": ["ocr"], "imagename": "../../../etc/passwd"}
    (folder / "mm-vet.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match="escapes"):
        MMVET.load(folder)


def test_prompts(samples: dict) -> None:
    s = samples["v1_1"]
    assert MMVET.variant("llava").prompt(s) == "What colour is the picture?"
    assert MMVET.variant("lmms-eval").prompt(s) == (
        "First please perform reasoning, and think step by step to provide best answer to the following "
        "question: \n\nWhat colour is the picture?"
    )
    assert {(v.max_new_tokens, v.image_mode) for v in MMVET.variants.values()} == {
        (1024, "crop"),
        (1024, "native"),
    }
    assert all(v.score is pending_judge for v in MMVET.variants.values())


def _record(sample: Sample, output: str) -> Prediction:
    variant = MMVET.variant("llava")
    return make_prediction(MMVET, variant, PROTOCOLS["llava"], sample, variant.prompt(sample), output)


def test_records_wait_for_the_judge_with_what_the_grader_needs(samples: dict) -> None:
    record = _record(samples["v1_0"], " Red and blue. ")
    assert (record.parse, record.answer, record.score) == (PENDING_JUDGE, None, 0.0)
    assert record.meta == {
        "target": "red<AND>blue",
        "question": "Which two colours are shown?",
        "capability": ["rec", "spat"],
        "imagename": "v1_0.png",
    }


def test_grader_request_from_a_record(samples: dict) -> None:
    assert MMVET.judged is not None and (MMVET.judged.tries, MMVET.judged.on_failure) == (5, "zero")
    req = MMVET.judged.request(_record(samples["v1_0"], " Red and blue. "))
    assert (req.temperature, req.max_tokens) == (0.0, 16)
    assert [m["role"] for m in req.messages] == ["user"]
    content = req.messages[0]["content"]
    template = files("evalkit").joinpath("data/prompts/mmvet_grader.txt").read_text(encoding="utf-8")
    head, tail = template.rstrip("\n").split("{question}")
    assert tail == " | {answer} | {prediction} |"
    # the rubric verbatim, then the row to complete: <AND> spaced as by the official grader, output stripped
    assert content == head + "Which two colours are shown? | red <AND> blue | Red and blue. |"
    assert not any(f"{{{p}}}" in content for p in ("question", "answer", "prediction"))


def test_packaged_rubric_is_our_own() -> None:
    text = MMVET_MODULE.grader_template()
    assert "<AND>" in text and "<OR>" in text and "0.0" in text and "1.0" in text
    assert text.count("\n") > 10  # few-shot rows
    assert "Compare the ground truth and prediction from AI models" not in text  # not the official wording


def test_values_are_filled_once_braces_and_backslashes_kept() -> None:
    template = "Q={question}\nA={answer}\nP={prediction}"
    filled = MMVET_MODULE.grader_prompt("Is {answer} here?", "a<OR>b", r"\1 {prediction} {x}", template)
    assert filled == "Q=Is {answer} here?\nA=a <OR> b\nP=\\1 {prediction} {x}"


def test_prompt_file_can_be_replaced(tmp_path: Path, samples: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    custom = tmp_path / "grader.txt"
    custom.write_text("Grade it.\n{question} || {answer} || {prediction} ||\n", encoding="utf-8")
    monkeypatch.setenv("EVALKIT_MMVET_PROMPT", str(custom))
    req = MMVET.judged.request(_record(samples["v1_2"], "7"))
    assert req.messages == [{"role": "user", "content": "Grade it.\nWhat is 3 + 4 as written? || 7 || 7 ||"}]
    custom.write_text("Grade {question} against {answer}.")
    with pytest.raises(ConfigError, match=r"placeholder\(s\) \{prediction\} missing"):
        MMVET.judged.request(_record(samples["v1_2"], "7"))
    monkeypatch.setenv("EVALKIT_MMVET_PROMPT", str(tmp_path / "absent.txt"))
    with pytest.raises(ConfigError, match=r"absent\.txt: cannot read it"):
        MMVET.judged.request(_record(samples["v1_2"], "7"))


@pytest.mark.parametrize(
    ("reply", "grade"),
    [
        ("0.5", 0.5),
        ("1.0", 1.0),
        ("0.25\n", 0.25),
        ("0", 0.0),
        ("1", 1.0),
        (" 0.7 ", 0.7),
        ("0.6 The prediction names one of the two cities.", 0.6),  # the first word decides
        ("0.8\nsince ...", 0.8),
        ("1.5", None),
        ("n/a", None),
        ("", None),
        ("-0.1", None),
        ("nan", None),
        ("1e-1", None),
        ("0.5.", None),
        ("Grade: 0.5", None),
    ],
)
def test_parse_grade(reply: str, grade: float | None) -> None:
    assert MMVET.judged.parse(reply) == grade
    if grade is not None:
        assert MMVET.judged.score(grade) == grade


def _p(sid: str, caps: list[str], score: float, parse: str, error: str | None = None) -> Prediction:
    grade = {"grade": score} if parse == "judge" else {}
    return Prediction(
        id=sid,
        prompt="",
        output="" if error else "some answer",
        answer=str(score) if parse == "judge" else None,
        score=score,
        parse=parse,
        meta={"target": "x", "question": "q", "capability": caps, **grade},
        error=error,
    )


def test_aggregate_by_hand() -> None:
    preds = [
        _p("v1_0", ["rec", "spat"], 1.0, "judge"),
        _p("v1_1", ["rec"], 0.5, "judge"),
        _p("v1_2", ["ocr", "math"], 0.0, JUDGE_FAILURE),  # never parsed: scored 0, counted
        _p("v1_3", ["rec", "gen", "know"], 0.25, "judge"),
        _p("v1_4", ["ocr"], 0.0, "failed", error="image not found"),  # no reply: 0
        _p("v1_5", ["rec"], 0.0, PENDING_JUDGE),  # not graded yet: only in `pending`
    ]
    metrics = MMVET.aggregate_for("llava")(preds)
    assert metrics == {
        "total": 35.0,  # (1 + 0.5 + 0 + 0.25 + 0) / 5
        "rec": pytest.approx(58.333333),  # (1 + 0.5 + 0.25) / 3: v1_0, v1_1, v1_3
        "ocr": 0.0,  # v1_2, v1_4
        "know": 25.0,
        "gen": 25.0,
        "spat": 100.0,
        "math": 0.0,
        "judge_failures": 1,
        "pending": 1,
        "unparsed": 0,
        "failed": 1,
    }
    assert MMVET.primary == "total"


def test_aggregate_of_records_not_yet_judged(samples: dict) -> None:
    records = [_record(s, "an answer") for s in samples.values()]
    metrics = MMVET.aggregate_for("llava")(records)
    assert metrics["pending"] == len(mmvet_items()) and metrics["total"] == 0.0
    assert (metrics["unparsed"], metrics["failed"], metrics["judge_failures"]) == (0, 0, 0)
