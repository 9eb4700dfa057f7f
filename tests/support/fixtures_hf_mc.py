"""Hugging Face parquet snapshots (written by `datasets`, images as `Image()` features) for the multiple
choice benchmarks distributed that way: AI2D (lmms-lab/ai2d), MMStar (Lin-Chen/MMStar) and MMMU
(MMMU/MMMU, one folder per subject).

Features exercised:
- AI2D: 3 and 4 options, the answer index stored as text ("0".."3").
- MMStar: options inside the question ("Options: A: .., B: .."), an option text with a comma, a question
  with " Please answer yes or no." and no options (letters A-D), l2 categories of unequal sizes (micro and
  macro accuracy differ).
- MMMU: three subjects in three disciplines, validation files next to dev and test files that must be
  ignored, `<image 2>` named before `<image 1>`, markers inside options, an options string with quotes
  (`"It's <image 1>"`), open questions with "1,000", "3.50", a text answer and a list of answers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.fixtures import image

# --- AI2D ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AI2DItem:
    question: str
    options: tuple[str, ...]
    answer: str  # the option index, as text
    colour: str


def ai2d_items() -> list[AI2DItem]:
    return [
        AI2DItem("Which colour fills the diagram?", ("red", "green", "blue"), "0", "red"),
        AI2DItem("What does the arrow show?", ("eats", "is eaten by", "lives in", "grows"), "2", "blue"),
        AI2DItem("Which stage comes first?", ("egg", "larva", "pupa", "adult"), "1", "green"),
        AI2DItem("What is label E?", ("stem", "root", "leaf", "flower"), "3", "yellow"),
    ]


def _write(rows: dict[str, list], features: dict[str, object], path: Path) -> Path:
    import datasets

    path.parent.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_dict(rows, features=datasets.Features(features)).to_parquet(str(path))
    return path


def write_ai2d(root: Path, items: list[AI2DItem] | None = None) -> Path:
    """`<root>/ai2d/data/test-00000-of-00001.parquet` like lmms-lab/ai2d."""
    import datasets

    items = items or ai2d_items()
    rows = {
        "question": [i.question for i in items],
        "options": [list(i.options) for i in items],
        "answer": [i.answer for i in items],
        "image": [image(i.colour) for i in items],
    }
    features = {
        "question": datasets.Value("string"),
        "options": datasets.Sequence(datasets.Value("string")),
        "answer": datasets.Value("string"),
        "image": datasets.Image(),
    }
    return _write(rows, features, root / "ai2d" / "data" / "test-00000-of-00001.parquet").parent


# --- MMStar --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MMStarItem:
    index: int
    question: str
    answer: str
    category: str
    l2_category: str
    colour: str


def mmstar_items() -> list[MMStarItem]:
    coarse, math = "coarse perception", "math"
    return [
        MMStarItem(0, "What is the main colour of the scene?\nOptions: A: red, B: green, C: blue, D: yellow",
                   "A", coarse, "image scene and topic", "red"),
        MMStarItem(1, "Which topic fits the image best?\nOptions: A: sports, B: a plain, blue field, "
                      "C: food, D: music", "B", coarse, "image scene and topic", "blue"),
        MMStarItem(2, "What emotion does the image convey?\nOptions: A: anger, B: fear, C: calm, D: joy",
                   "C", coarse, "image emotion", "green"),
        MMStarItem(3, "How many sides does the shape have?\nOptions: A: 3, B: 4, C: 5, D: 6",
                   "D", math, "geometry", "yellow"),
        MMStarItem(4, "Is the mean of the bars above 10? Please answer yes or no.", "A", math,
                   "statistical reasoning", "red"),
    ]  # fmt: skip


def write_mmstar(root: Path, items: list[MMStarItem] | None = None) -> Path:
    """`<root>/mmstar/mmstar.parquet` like Lin-Chen/MMStar (one file, split val)."""
    import datasets

    items = items or mmstar_items()
    rows = {
        "index": [i.index for i in items],
        "question": [i.question for i in items],
        "image": [image(i.colour) for i in items],
        "answer": [i.answer for i in items],
        "category": [i.category for i in items],
        "l2_category": [i.l2_category for i in items],
        "meta_info": [{"source": "fixture", "split": "val"} for _ in items],
    }
    features = {
        "index": datasets.Value("int64"),
        "question": datasets.Value("string"),
        "image": datasets.Image(),
        "answer": datasets.Value("string"),
        "category": datasets.Value("string"),
        "l2_category": datasets.Value("string"),
        "meta_info": {"source": datasets.Value("string"), "split": datasets.Value("string")},
    }
    return _write(rows, features, root / "mmstar" / "mmstar.parquet").parent


# --- MMMU ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MMMUItem:
    id: str
    question: str
    options: str  # a Python list literal, as the dataset stores it
    answer: str
    question_type: str = "multiple-choice"
    images: dict[int, str] = field(default_factory=lambda: {1: "red"})  # image_k -> colour
    subfield: str = "General"


def mmmu_items() -> list[MMMUItem]:
    open_ = "open"
    return [
        MMMUItem("validation_Art_Theory_1", "Compare <image 2> with <image 1>. Which painting is older?",
                 "['The red one', 'The blue one', 'Both are from 1900']", "B", images={1: "red", 2: "blue"}),
        MMMUItem("validation_Art_Theory_2", "Which picture shows a green field?",
                 "['<image 2>', '<image 3>', \"It's <image 1>\"]", "C",
                 images={1: "green", 2: "red", 3: "yellow", 4: "blue"}),  # image_4: no marker, not sent
        MMMUItem("validation_Accounting_1", "<image 1> What is the total revenue in dollars?", "[]", "1,000",
                 open_),
        MMMUItem("validation_Accounting_2", "<image 1> What does the table cost?",
                 "['$5', '$10', '$15', '$20']", "A"),
        MMMUItem("validation_Math_1", "<image 1> What is x?", "[]", "3.50", open_, {1: "blue"}),
        MMMUItem("validation_Math_2", "<image 1> Which theorem applies?", "[]", "Pythagorean theorem", open_),
        MMMUItem("validation_Math_3", "<image 1> How often is the shop open?", "[]", "['24/7', '3.429']",
                 open_, {1: "yellow"}),
    ]  # fmt: skip


IGNORED = {
    "Art_Theory/dev-00000-of-00001.parquet": MMMUItem(
        "dev_Art_Theory_1", "<image 1> dev?", "['x', 'y']", "A"
    ),
    "Math/test-00000-of-00001.parquet": MMMUItem("test_Math_1", "<image 1> test?", "['x', 'y']", "?"),
}


def _write_mmmu_file(items: list[MMMUItem], path: Path) -> None:
    import datasets

    rows: dict[str, list] = {
        "id": [i.id for i in items],
        "question": [i.question for i in items],
        "options": [i.options for i in items],
        "explanation": ["" for _ in items],
        **{f"image_{k}": [image(i.images[k]) if k in i.images else None for i in items] for k in range(1, 8)},
        "img_type": ["['Diagrams']" for _ in items],
        "answer": [i.answer for i in items],
        "topic_difficulty": ["Easy" for _ in items],
        "question_type": [i.question_type for i in items],
        "subfield": [i.subfield for i in items],
    }
    features = {k: datasets.Value("string") for k in rows} | {
        f"image_{k}": datasets.Image() for k in range(1, 8)
    }
    _write(rows, features, path)


def write_mmmu(root: Path, items: list[MMMUItem] | None = None) -> Path:
    """`<root>/mmmu/<Subject>/validation-00000-of-00001.parquet` (+ dev/test files to be ignored)."""
    folder = root / "mmmu"
    by_subject: dict[str, list[MMMUItem]] = {}
    for item in items or mmmu_items():
        by_subject.setdefault(item.id.removeprefix("validation_").rsplit("_", 1)[0], []).append(item)
    for subject, subject_items in by_subject.items():
        _write_mmmu_file(subject_items, folder / subject / "validation-00000-of-00001.parquet")
    for relative, item in IGNORED.items():
        _write_mmmu_file([item], folder / relative)
    return folder


FIXTURES: dict[str, Callable[[Path], object]] = {
    "ai2d": write_ai2d,
    "mmstar": write_mmstar,
    "mmmu_val": write_mmmu,
}
