"""MMBench / CCBench fixtures in the authors' TSV format (pandas `to_csv(sep="\\t", index=False)`, as
VLMEvalKit and the MMBench team wrote them), and an lmms-lab/MMBench-like parquet snapshot.

Each question shows a solid-colour image and asks for its colour, so a fake model that looks at the image
can answer every circular pass (the right letter moves with the rotation). Features exercised:
- a hint with a newline (a quoted cell), an empty hint (NaN, written as an empty cell);
- questions with 2, 3 and 4 options;
- image back-references: the rotated copies name their original's index; question 3 reuses question 1's
  image by naming index 1 (as the released files do for repeated images);
- `L2-category` spelled upper-case (EN dev) and lower-case (the others); CCBench without hint/l2-category;
- files with their own circular copies (EN dev, CN test) and without (the rest);
- a test file without the `answer` column (`write_en_test(root, answers=False)`).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from tests.support.fixtures import image, png_bytes

CIRCULAR = 1_000_000
ZH = {"red": "红色", "green": "绿色", "blue": "蓝色", "yellow": "黄色"}


@dataclass(frozen=True)
class Question:
    index: int
    colour: str  # the image's colour
    question: str
    options: tuple[str, ...]
    answer: str
    category: str
    l2: str
    hint: str | None = None
    image_of: int | None = None  # reuse another question's image (a back-reference)
    extra: dict[str, str] = field(default_factory=dict)


def en_questions() -> list[Question]:
    fine, coarse = "finegrained_perception (instance-level)", "coarse_perception"
    return [
        Question(0, "red", "What colour is the image?", ("blue", "red", "green", "yellow"), "B",
                 "attribute_recognition", fine, hint="Look at the picture.\nIt has one colour."),
        Question(1, "blue", "Is the image red or blue?", ("red", "blue"), "B", "image_style", coarse),
        Question(2, "green", "Which colour fills the picture?", ("green", "yellow", "red"), "A",
                 "attribute_recognition", fine),
        Question(3, "blue", "What colour is shown?", ("yellow", "red", "green", "blue"), "D",
                 "image_style", coarse, image_of=1),
    ]  # fmt: skip


def cn_questions() -> list[Question]:
    def zh(*colours: str) -> tuple[str, ...]:
        return tuple(ZH[c] for c in colours)

    return [
        Question(0, "red", "图中是什么颜色？", zh("blue", "red", "green", "yellow"), "B",
                 "attribute_recognition", "finegrained_perception (instance-level)",
                 hint="请看图片。\n图片只有一种颜色。"),
        Question(1, "yellow", "图片是黄色还是绿色？", zh("yellow", "green"), "A", "image_style",
                 "coarse_perception"),
        Question(2, "green", "图片是什么颜色？", zh("red", "green", "blue"), "B", "image_style",
                 "coarse_perception"),
    ]  # fmt: skip


def cc_questions() -> list[Question]:
    def zh(*colours: str) -> tuple[str, ...]:
        return tuple(ZH[c] for c in colours)

    return [
        Question(0, "red", "这幅画的主色是什么？", zh("green", "red", "blue", "yellow"), "B",
                 "calligraphy_painting", ""),
        Question(1, "yellow", "这件文物是什么颜色？", zh("yellow", "blue"), "A", "cultural_relic", ""),
        Question(2, "blue", "图中建筑是什么颜色？", zh("red", "green", "blue"), "C", "scenery_building", ""),
    ]  # fmt: skip


def rotations(q: Question) -> list[tuple[int, tuple[str, ...], str]]:
    """(index, options, answer) per circular pass, worked the way the released files hold them."""
    n = len(q.options)
    at = "ABCDE".index(q.answer)
    return [(q.index + k * CIRCULAR, q.options[k:] + q.options[:k], "ABCDE"[(at - k) % n]) for k in range(n)]


def _b64(colour: str) -> str:
    return base64.b64encode(png_bytes(image(colour))).decode("ascii")


def write_tsv(
    path: Path,
    questions: list[Question],
    *,
    circular: bool,
    answers: bool = True,
    hint: bool = True,
    l2: str | None = "l2-category",
    split: str = "dev",
) -> Path:
    """One benchmark file; with `circular`, each question's rotated copies follow all originals."""
    rows = []
    passes = [(q, *r) for q in questions for r in (rotations(q) if circular else rotations(q)[:1])]
    passes.sort(key=lambda p: p[1])
    for q, index, options, answer in passes:
        row: dict[str, object] = {"index": index, "question": q.question}
        if hint:
            row["hint"] = q.hint  # None -> NaN -> an empty cell
        row |= {c: (options[i] if i < len(options) else None) for i, c in enumerate("ABCD")}
        if answers:
            row["answer"] = answer
        original = index == q.index
        ref = q.image_of if original else (q.image_of if q.image_of is not None else q.index)
        row |= {
            "category": q.category,
            "image": _b64(q.colour) if ref is None else str(ref),
            "source": "fixture",
        }
        if l2:
            row[l2] = q.l2
        row |= {"comment": None, "split": split} | q.extra
        rows.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)
    return path


def write_en_dev(root: Path) -> Path:
    return write_tsv(root / "mmbench" / "MMBench_DEV_EN.tsv", en_questions(), circular=True, l2="L2-category")


def write_en_test(root: Path, answers: bool = True) -> Path:
    """LLaVA's file name, no circular copies; without `answers`, the release form (no answer column)."""
    path = root / "mmbench" / "mmbench_test_20230712.tsv"
    return write_tsv(path, en_questions()[:2], circular=False, answers=answers, split="test")


def write_cn_dev(root: Path) -> Path:
    return write_tsv(root / "mmbench" / "mmbench_dev_cn_20231003.tsv", cn_questions(), circular=False)


def write_cn_test(root: Path, answers: bool = True) -> Path:
    path = root / "mmbench" / "MMBench_TEST_CN.tsv"
    return write_tsv(path, cn_questions(), circular=True, answers=answers, split="test")


def write_ccbench(root: Path) -> Path:
    return write_tsv(root / "mmbench" / "CCBench.tsv", cc_questions(), circular=False, hint=False, l2=None)


def write_en_dev_parquet(root: Path) -> Path:
    """An lmms-lab/MMBench-like snapshot, `mmbench/en/dev-00000-of-00001.parquet`: the same rows as the EN
    dev TSV (circular copies included, each with its own image), `L2-category`, missing hints as "nan"."""
    import datasets

    columns = ["index", "question", "hint", "A", "B", "C", "D", "answer", "category", "source", "L2-category"]
    data: dict[str, list] = {c: [] for c in [*columns, "comment", "split", "image"]}
    passes = sorted(((q, *r) for q in en_questions() for r in rotations(q)), key=lambda p: p[1])
    for q, index, options, answer in passes:
        opts = [*options, "nan", "nan"][:4]
        values = [index, q.question, q.hint or "nan", *opts, answer, q.category, "fixture", q.l2]
        for c, v in zip(columns, values, strict=True):
            data[c].append(v)
        data["comment"].append("nan")
        data["split"].append("dev")
        data["image"].append(image(q.colour))
    features = datasets.Features(
        {c: datasets.Value("int64" if c == "index" else "string") for c in data if c != "image"}
        | {"image": datasets.Image()}
    )
    folder = root / "mmbench" / "en"
    folder.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_dict(data, features=features).to_parquet(str(folder / "dev-00000-of-00001.parquet"))
    return folder


FIXTURES: dict[str, Callable[[Path], object]] = {
    "mmbench_en_dev": write_en_dev,
    "mmbench_en_test": write_en_test,  # with answers: the conformance suite scores the target itself
    "mmbench_cn_dev": write_cn_dev,
    "mmbench_cn_test": write_cn_test,
    "ccbench": write_ccbench,
}
