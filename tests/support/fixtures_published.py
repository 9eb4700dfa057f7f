"""Test splits whose answers were published after release, in the forms the answers came out:

- MMBench v1.1 test TSVs (`MMBench_TEST_{EN,CN}_V11.tsv`, VLMEvalKit's names) with or without the `answer`
  column, in the authors' TSV layout (see fixtures_mmbench);
- MMMU test parquet files (`<Subject>/test-00000-of-00001.parquet`, answers "?" as MMMU/MMMU holds them),
  with the released `answer_dict_test.json` beside them, or with the parquet `answer` column filled.
  Validation and dev files of another subject lie beside them and must be ignored. Three subjects in three
  disciplines; an open question whose gold is a list (the answer dict's form for several accepted answers).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from tests.support.fixtures_hf_mc import MMMUItem, _write_mmmu_file
from tests.support.fixtures_mmbench import cn_questions, en_questions, write_tsv


def write_en_test_v11(root: Path, answers: bool = True) -> Path:
    """No circular copies in the file (the loader makes the passes), split "test"."""
    path = root / "mmbench" / "MMBench_TEST_EN_V11.tsv"
    return write_tsv(path, en_questions(), circular=False, answers=answers, split="test")


def write_cn_test_v11(root: Path, answers: bool = True) -> Path:
    """With its own circular copies."""
    path = root / "mmbench" / "MMBench_TEST_CN_V11.tsv"
    return write_tsv(path, cn_questions(), circular=True, answers=answers, split="test")


OPEN = "open"
# (item with answer "?", the published ground truth: text or a list of accepted answers)
MMMU_TEST: list[tuple[MMMUItem, str | list[str]]] = [
    (MMMUItem("test_Art_Theory_1", "Compare <image 2> with <image 1>. Which painting is older?",
              "['The red one', 'The blue one', 'Both']", "?", images={1: "red", 2: "blue"}), "B"),
    (MMMUItem("test_Art_Theory_2", "<image 1> Which animal is drawn?", "['Cat', 'Dog', 'Bird', 'Fish']", "?"),
     "D"),
    (MMMUItem("test_Accounting_1", "<image 1> What is the revenue in dollars?", "[]", "?", OPEN), "1,000"),
    (MMMUItem("test_Accounting_2", "<image 1> What does the table cost?", "['$5', '$10', '$15', '$20']", "?"),
     "A"),
    (MMMUItem("test_Math_1", "<image 1> What is x?", "[]", "?", OPEN, {1: "blue"}), "3.50"),
    (MMMUItem("test_Math_2", "<image 1> How often is the shop open?", "[]", "?", OPEN), ["24/7", "always"]),
]  # fmt: skip
IGNORED = {
    "Math/validation-00000-of-00001.parquet": MMMUItem(
        "validation_Math_1", "<image 1> val?", "['x', 'y']", "A"
    ),
    "Math/dev-00000-of-00001.parquet": MMMUItem("dev_Math_1", "<image 1> dev?", "['x', 'y']", "B"),
}
Answers = Literal["file", "parquet", "none"]


def answer_dict(golds: dict[str, str | list[str]] | None = None) -> dict[str, dict[str, object]]:
    """`answer_dict_test.json`'s content, as MMMU's answer_dict_val.json is laid out."""
    types = {item.id: item.question_type for item, _ in MMMU_TEST}
    golds = golds if golds is not None else {item.id: gold for item, gold in MMMU_TEST}
    return {
        qid: {
            "question_type": "short-answer" if types.get(qid) == OPEN else "multiple-choice",
            "ground_truth": g,
        }
        for qid, g in golds.items()
    }


def write_mmmu_test(root: Path, answers: Answers = "file", drop: str = "") -> Path:
    """`<root>/mmmu/<Subject>/test-00000-of-00001.parquet`; answers from `answer_dict_test.json` ("file"),
    in the parquet's `answer` column ("parquet"; a list gold written as its Python literal, as MMMU/MMMU's
    validation files hold them), or withheld ("none"). `drop`: an id left without an answer."""
    folder = root / "mmmu"
    by_subject: dict[str, list[MMMUItem]] = {}
    for item, gold in MMMU_TEST:
        if answers == "parquet" and item.id != drop:
            item = MMMUItem(item.id, item.question, item.options, str(gold), item.question_type, item.images)
        by_subject.setdefault(item.id.removeprefix("test_").rsplit("_", 1)[0], []).append(item)
    for subject, items in by_subject.items():
        _write_mmmu_file(items, folder / subject / "test-00000-of-00001.parquet")
    for relative, item in IGNORED.items():
        _write_mmmu_file([item], folder / relative)
    if answers == "file":
        golds = {item.id: gold for item, gold in MMMU_TEST if item.id != drop}
        (folder / "answer_dict_test.json").write_text(json.dumps(answer_dict(golds), indent=4))
    return folder


FIXTURES: dict[str, Callable[[Path], object]] = {
    "mmbench_en_test_v11": write_en_test_v11,  # with answers: the conformance suite scores the target itself
    "mmbench_cn_test_v11": write_cn_test_v11,
    "mmmu_test": write_mmmu_test,
}
