"""VQAv2 and VizWiz fixtures in the authors' layouts (and lmms-lab-like parquet snapshots).

VQAv2 val questions carry the normalisation edge cases: ten identical capitalised answers (compared raw by
the official code), "2"/"two", "1,000", "3.5", "man's", "t-shirt", articles and the contraction "dont".
The test2015 question file holds ids that test-dev lacks (the export must list them with "").
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.support.fixtures import image, save


def ten(*groups: tuple[str, int]) -> list[str]:
    """Ten annotators' answers from (answer, how many) groups."""
    answers = [a for a, n in groups for _ in range(n)]
    assert len(answers) == 10
    return answers


# --- VQAv2 ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VqaItem:
    question_id: int
    image_id: int
    colour: str
    question: str
    answers: tuple[str, ...] = ()  # empty for test questions
    mca: str = ""  # multiple_choice_answer
    answer_type: str = ""
    question_type: str = ""


def vqav2_val_items() -> list[VqaItem]:
    def item(qid: int, img: int, colour: str, q: str, answers: list[str], mca: str, kind: str) -> VqaItem:
        return VqaItem(qid, img, colour, q, tuple(answers), mca, kind, " ".join(q.lower().split()[:2]))

    return [
        item(1001, 11, "red", "Is the image red?", ten(("yes", 10)), "yes", "yes/no"),
        item(1002, 11, "red", "How many dogs are there?", ten(("2", 4), ("two", 3), ("3", 2), ("2 dogs", 1)),
             "2", "number"),
        item(1003, 12, "blue", "How many people live here?",
             ten(("1,000", 5), ("1000", 2), ("thousand", 1), ("many", 2)), "1000", "number"),
        item(1004, 12, "blue", "What is the ratio?", ten(("3.5", 6), ("3", 2), ("4", 2)), "3.5", "number"),
        item(1005, 13, "green", "Whose hat is this?", ten(("man's", 5), ("mans", 2), ("the man's", 3)),
             "man's", "other"),
        item(1006, 13, "green", "What is he wearing?",
             ten(("t-shirt", 4), ("T-shirt", 2), ("tshirt", 2), ("a t-shirt", 2)), "t-shirt", "other"),
        item(1007, 14, "yellow", "Do you know the answer?",
             ten(("dont know", 3), ("don't know", 4), ("no", 3)), "don't know", "other"),
        item(1008, 14, "yellow", "What colour is the sky?",
             ten(("blue", 3), ("Blue", 2), ("the blue", 1), ("light blue", 4)), "blue", "other"),
    ]  # fmt: skip


def vqav2_testdev_items() -> list[VqaItem]:
    return [
        VqaItem(2001, 21, "red", "Is this a test?"),
        VqaItem(2002, 21, "red", "How many dogs are in the test?"),
        VqaItem(2003, 22, "blue", "What fails here?"),
        VqaItem(2004, 22, "blue", "Whose hat is in the test?"),
        VqaItem(2005, 23, "green", "What is unclear?"),
    ]


# test2015 = test-dev plus questions only the full test set has, interleaved
TEST2015_ONLY = [VqaItem(3001, 31, "yellow", "Is this only in test?"), VqaItem(3002, 32, "red", "Only here?")]
TEST2015_ORDER = [3001, 2001, 2002, 3002, 2003, 2004, 2005]


def _questions_file(path: Path, items: list[VqaItem], subtype: str) -> None:
    questions = [
        {"image_id": i.image_id, "question": i.question, "question_id": i.question_id} for i in items
    ]
    doc = {"info": {}, "task_type": "Open-Ended", "data_type": "mscoco", "license": {}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc | {"data_subtype": subtype, "questions": questions}), encoding="utf-8")


def _annotation(i: VqaItem) -> dict:
    answers = [
        {"answer": a, "answer_confidence": "yes" if k % 3 else "maybe", "answer_id": k + 1}
        for k, a in enumerate(i.answers)
    ]
    return {
        "question_id": i.question_id,
        "image_id": i.image_id,
        "question_type": i.question_type,
        "answer_type": i.answer_type,
        "multiple_choice_answer": i.mca,
        "answers": answers,
    }


def write_vqav2_val(root: Path, items: list[VqaItem] | None = None) -> Path:
    """`vqav2/v2_OpenEnded_mscoco_val2014_questions.json`, `v2_mscoco_val2014_annotations.json` and the
    images `coco/val2014/COCO_val2014_<12-digit image id>.jpg`."""
    items = items or vqav2_val_items()
    folder = root / "vqav2"
    _questions_file(folder / "v2_OpenEnded_mscoco_val2014_questions.json", items, "val2014")
    annotations = {"info": {}, "license": {}, "data_subtype": "val2014", "annotations": []}
    annotations["annotations"] = [_annotation(i) for i in items]
    (folder / "v2_mscoco_val2014_annotations.json").write_text(json.dumps(annotations), encoding="utf-8")
    for i in items:
        save(image(i.colour), root / "coco" / "val2014" / f"COCO_val2014_{i.image_id:012d}.jpg")
    return folder


def write_vqav2_testdev(root: Path) -> Path:
    """`vqav2/v2_OpenEnded_mscoco_test-dev2015_questions.json`, `..._test2015_questions.json` (a superset,
    in TEST2015_ORDER) and `coco/test2015/` images."""
    folder = root / "vqav2"
    testdev = vqav2_testdev_items()
    by_id = {i.question_id: i for i in testdev + TEST2015_ONLY}
    _questions_file(folder / "v2_OpenEnded_mscoco_test-dev2015_questions.json", testdev, "test-dev2015")
    test2015 = [by_id[q] for q in TEST2015_ORDER]
    _questions_file(folder / "v2_OpenEnded_mscoco_test2015_questions.json", test2015, "test2015")
    for i in test2015:
        save(image(i.colour), root / "coco" / "test2015" / f"COCO_test2015_{i.image_id:012d}.jpg")
    return folder


def write_vqav2_parquet(root: Path) -> Path:
    """An lmms-lab/VQAv2-like snapshot: `vqav2/data/{validation,testdev,test}-00000-of-00001.parquet`."""
    import datasets

    answer = {"answer": datasets.Value("string"), "answer_confidence": datasets.Value("string")}
    features = datasets.Features(
        {
            "question_type": datasets.Value("string"),
            "multiple_choice_answer": datasets.Value("string"),
            "answers": [answer | {"answer_id": datasets.Value("int64")}],
            "image_id": datasets.Value("int64"),
            "answer_type": datasets.Value("string"),
            "question_id": datasets.Value("int64"),
            "question": datasets.Value("string"),
            "image": datasets.Image(),
        }
    )
    by_id = {i.question_id: i for i in vqav2_testdev_items() + TEST2015_ONLY}
    splits = {
        "validation": vqav2_val_items(),
        "testdev": vqav2_testdev_items(),
        "test": [by_id[q] for q in TEST2015_ORDER],
    }
    folder = root / "vqav2" / "data"
    folder.mkdir(parents=True, exist_ok=True)
    for split, items in splits.items():
        rows = [
            _annotation(i) | {"question": i.question, "image": image(i.colour)}
            if i.answers
            else {"question_id": i.question_id, "image_id": i.image_id, "question": i.question}
            | {"question_type": None, "multiple_choice_answer": None, "answers": None, "answer_type": None}
            | {"image": image(i.colour)}
            for i in items
        ]
        dataset = datasets.Dataset.from_list(rows, features=features)
        dataset.to_parquet(str(folder / f"{split}-00000-of-00001.parquet"))
    return folder


# --- VizWiz --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VizWizItem:
    image: str
    colour: str
    question: str
    answers: tuple[str, ...] = ()
    answer_type: str = ""


def vizwiz_val_items() -> list[VizWizItem]:
    def item(n: int, colour: str, q: str, answers: list[str], kind: str) -> VizWizItem:
        return VizWizItem(f"VizWiz_val_{n:08d}.jpg", colour, q, tuple(answers), kind)

    return [
        item(0, "red", "What is this?", ten(("Coca Cola", 3), ("coke", 4), ("coca cola", 2), ("soda", 1)),
             "other"),
        item(1, "blue", "IS THIS BLUE?", ten(("yes", 8), ("Yes.", 1), ("no", 1)), "yes/no"),
        item(2, "green", "how many fingers?", ten(("two", 4), ("2", 3), ("3", 3)), "number"),
        item(3, "yellow", "What does the label say?", ten(("unanswerable", 7), ("unsuitable", 3)),
             "unanswerable"),
        item(4, "red", "What's the expiry date?",
             ten(("12/2024", 3), ("december 2024", 3), ("unanswerable", 4)), "other"),
    ]  # fmt: skip


def vizwiz_test_items() -> list[VizWizItem]:
    asked = (
        ("green", "What is in this can?"),
        ("red", "what colour is this SHIRT?"),
        ("yellow", "Is the light on?"),
    )
    return [VizWizItem(f"VizWiz_test_{n:08d}.jpg", c, q) for n, (c, q) in enumerate(asked)]


def _vizwiz_entry(i: VizWizItem) -> dict:
    if not i.answers:
        return {"image": i.image, "question": i.question}
    answers = [{"answer": a, "answer_confidence": "yes"} for a in i.answers]
    answerable = int(i.answer_type != "unanswerable")
    return {"image": i.image, "question": i.question, "answers": answers} | {
        "answer_type": i.answer_type,
        "answerable": answerable,
    }


def _write_vizwiz(root: Path, split: str, items: list[VizWizItem]) -> Path:
    folder = root / "vizwiz"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{split}.json").write_text(json.dumps([_vizwiz_entry(i) for i in items]), encoding="utf-8")
    for i in items:
        save(image(i.colour), folder / split / i.image)
    return folder


def write_vizwiz_val(root: Path, items: list[VizWizItem] | None = None) -> Path:
    """`vizwiz/val.json` and `vizwiz/val/<image>`."""
    return _write_vizwiz(root, "val", items or vizwiz_val_items())


def write_vizwiz_test(root: Path, items: list[VizWizItem] | None = None) -> Path:
    """`vizwiz/test.json` (no answers) and `vizwiz/test/<image>`."""
    return _write_vizwiz(root, "test", items or vizwiz_test_items())


def write_vizwiz_parquet(root: Path) -> Path:
    """An lmms-lab/VizWiz-VQA-like snapshot: `vizwiz/data/{val,test}-00000-of-00001.parquet`; question_id is
    the image's stem, answers plain strings, category the answer type (test: empty answers, no category)."""
    import datasets

    features = datasets.Features(
        {
            "question_id": datasets.Value("string"),
            "image": datasets.Image(),
            "question": datasets.Value("string"),
            "answers": datasets.Sequence(datasets.Value("string")),
            "category": datasets.Value("string"),
        }
    )
    folder = root / "vizwiz" / "data"
    folder.mkdir(parents=True, exist_ok=True)
    for split, items in (("val", vizwiz_val_items()), ("test", vizwiz_test_items())):
        rows = {
            "question_id": [i.image.removesuffix(".jpg") for i in items],
            "image": [image(i.colour) for i in items],
            "question": [i.question for i in items],
            "answers": [list(i.answers) for i in items],
            "category": [i.answer_type or None for i in items],
        }
        datasets.Dataset.from_dict(rows, features=features).to_parquet(
            str(folder / f"{split}-00000-of-00001.parquet")
        )
    return folder


FIXTURES: dict[str, Callable[[Path], object]] = {
    "vqav2_val": write_vqav2_val,
    "vqav2_testdev": write_vqav2_testdev,
    "vizwiz_val": write_vizwiz_val,
    "vizwiz_test": write_vizwiz_test,
}


# --- run folders ---------------------------------------------------------------------------------------


def write_run(
    folder: Path, task_name: str, data: Path, replies: dict[str, object], protocol: str = "llava"
) -> Path:
    """A run's task folder as `evalkit run` leaves it: predictions.jsonl for the samples in `replies` (a
    reply is text, or a `Failure`) and metrics.json naming `data` as the task's data folder."""
    from evalkit.backends.base import Failure
    from evalkit.protocols import PROTOCOLS
    from evalkit.records import DataInfo, PredictionWriter, RunRecord
    from evalkit.registry import get_task
    from evalkit.runner import make_prediction

    task = get_task(task_name)
    variant = task.variant(protocol)
    samples = {s.id: s for s in task.load(data).samples}
    records = []
    for sid, reply in replies.items():
        s = samples[sid]
        output = reply if isinstance(reply, Failure) else str(reply)
        records.append(make_prediction(task, variant, PROTOCOLS[protocol], s, variant.prompt(s), output))
    with PredictionWriter(folder / "predictions.jsonl") as writer:
        writer.write(records)
    record = RunRecord(
        task=task.name, task_version=task.version, protocol=protocol, model="scripted", model_config={},
        generation={}, evalkit_version="test", git_sha=None,
        data=DataInfo(path=str(data), format="authors", fingerprint="sha256:test"), n=len(records),
        started="", finished="", seconds=0.0, samples_per_second=0.0,
        metrics=task.aggregate_for(protocol)(records), primary=task.primary_for(protocol),
    )  # fmt: skip
    (folder / "metrics.json").write_text(record.dump(), encoding="utf-8")
    return folder
