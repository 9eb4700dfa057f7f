"""Multiple-choice benchmark fixtures in the authors' layouts (and HF parquet snapshots): SEED-Bench,
ScienceQA and Q-Bench, each image a solid colour whose name is the right option."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tests.support.fixtures import image, save

# --- SEED-Bench ----------------------------------------------------------------------------------------

# the file's own names; ids 3 and 4 swapped with respect to the paper's order, as some copies have them
SEED_TYPES = {
    "Scene Understanding": 1,
    "Instance Identity": 2,
    "Instance Attributes": 3,
    "Instance Location": 4,
    "Instances Counting": 5,
    "Spatial Relation": 6,
    "Instance Interaction": 7,
    "Visual Reasoning": 8,
    "Text Understanding": 9,
    "Action Recognition": 10,
    "Action Prediction": 11,
    "Procedure Understanding": 12,
}


@dataclass(frozen=True)
class SeedItem:
    question_id: str
    type_id: int
    colour: str
    choices: tuple[str, str, str, str]
    data_type: str = "image"

    @property
    def answer(self) -> str:
        return "ABCD"[self.choices.index(self.colour)]

    @property
    def data_id(self) -> str:
        return (
            f"{self.question_id}_2591111986.jpg" if self.data_type == "image" else f"v{self.question_id}.mp4"
        )


def seed_items() -> list[SeedItem]:
    return [
        SeedItem("101", 1, "red", ("red", "green", "blue", "yellow")),
        SeedItem("102", 1, "blue", ("green", "blue", "red", "yellow")),
        SeedItem("103", 3, "green", ("yellow", "red", "blue", "green")),
        SeedItem("104", 4, "yellow", ("yellow", "green", "red", "blue")),
        SeedItem("105", 9, "red", ("blue", "green", "red", "yellow")),
        SeedItem("201", 10, "blue", ("blue", "red", "green", "yellow"), data_type="video"),  # skipped
        SeedItem("202", 11, "green", ("red", "green", "blue", "yellow"), data_type="video"),  # skipped
    ]


def seed_question(item: SeedItem) -> str:
    return f"Which colour fills picture {item.question_id}?"


def write_seed(root: Path, items: list[SeedItem] | None = None) -> Path:
    """`<root>/seed_bench/SEED-Bench.json` and `SEED-Bench-image/<data_id>` (video rows have no image)."""
    folder = root / "seed_bench"
    questions = []
    for item in items or seed_items():
        if item.data_type == "image":
            save(image(item.colour), folder / "SEED-Bench-image" / item.data_id)
        questions.append(
            {
                "answer": item.answer,
                "choice_a": item.choices[0],
                "choice_b": item.choices[1],
                "choice_c": item.choices[2],
                "choice_d": item.choices[3],
                "data_id": item.data_id,
                "data_type": item.data_type,
                "question": seed_question(item),
                "question_id": item.question_id,
                "question_type_id": item.type_id,
            }
        )
    folder.mkdir(parents=True, exist_ok=True)
    data = {"questions": questions, "question_type": SEED_TYPES}
    (folder / "SEED-Bench.json").write_text(json.dumps(data, indent=1), encoding="utf-8")
    return folder


# --- ScienceQA -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SqaItem:
    pid: str
    colour: str
    choices: tuple[str, ...]
    hint: str = ""
    split: str = "test"
    has_image: bool = True

    @property
    def answer(self) -> int:
        return self.choices.index(self.colour)

    @property
    def question(self) -> str:
        return f"Which colour is shown in figure {self.pid}?"


def sqa_items() -> list[SqaItem]:
    return [
        SqaItem("1", "red", ("red", "blue")),  # 2 options, empty hint: no context line
        SqaItem("2", "blue", ("green", "yellow", "blue"), hint="The figure is one flat colour."),
        SqaItem("3", "green", ("yellow", "green", "red", "blue")),
        SqaItem("4", "yellow", ("red", "green", "blue", "yellow", "white")),  # 5 options
        SqaItem("5", "red", ("red", "blue"), has_image=False),  # no image: not in IMG
        SqaItem("6", "blue", ("blue", "red"), split="val"),  # other split
        SqaItem("7", "green", ("red", "green"), split="train"),
        SqaItem("8", "red", ("blue", "red"), hint="Look closely."),
    ]


def write_sqa(root: Path, items: list[SqaItem] | None = None) -> Path:
    """`<root>/scienceqa/problems.json`, `pid_splits.json` and `images/<split>/<pid>/image.png`."""
    folder = root / "scienceqa"
    problems, splits = {}, {"train": [], "val": [], "test": [], "minival": []}
    for item in items or sqa_items():
        problems[item.pid] = {
            "question": item.question,
            "choices": list(item.choices),
            "answer": item.answer,
            "hint": item.hint,
            "image": "image.png" if item.has_image else None,
            "task": "closed choice",
            "grade": "grade4",
            "subject": "natural science",
            "topic": "colours",
            "category": "Colour",
            "skill": "Identify colours",
            "lecture": "",
            "solution": "",
            "split": item.split,
        }
        splits[item.split].append(item.pid)
        if item.has_image:
            save(image(item.colour), folder / "images" / item.split / item.pid / "image.png")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "problems.json").write_text(json.dumps(problems, indent=1), encoding="utf-8")
    (folder / "pid_splits.json").write_text(json.dumps(splits), encoding="utf-8")
    return folder


def write_sqa_parquet(root: Path, items: list[SqaItem] | None = None) -> Path:
    """An lmms-lab/ScienceQA-like snapshot: `ScienceQA-IMG/{test,validation}-*.parquet` and a FULL test
    file that must be ignored. Only items with an image go into the IMG files."""
    import datasets

    features = datasets.Features(
        {
            "image": datasets.Image(),
            "question": datasets.Value("string"),
            "choices": datasets.Sequence(datasets.Value("string")),
            "answer": datasets.Value("int8"),
            "hint": datasets.Value("string"),
            "subject": datasets.Value("string"),
        }
    )
    folder = root / "scienceqa"
    for config, split in (
        ("ScienceQA-IMG", "test"),
        ("ScienceQA-IMG", "validation"),
        ("ScienceQA-FULL", "test"),
    ):
        wanted = "val" if split == "validation" else split
        chosen = [i for i in items or sqa_items() if i.split == wanted and (i.has_image or "FULL" in config)]
        rows = {
            "image": [image(i.colour) if i.has_image else None for i in chosen],
            "question": [i.question for i in chosen],
            "choices": [list(i.choices) for i in chosen],
            "answer": [i.answer for i in chosen],
            "hint": [i.hint for i in chosen],
            "subject": ["natural science" for _ in chosen],
        }
        (folder / config).mkdir(parents=True, exist_ok=True)
        datasets.Dataset.from_dict(rows, features=features).to_parquet(
            str(folder / config / f"{split}-00000-of-00001.parquet")
        )
    return folder


# --- Q-Bench -------------------------------------------------------------------------------------------

QBENCH_TYPES = ["Yes/No", "How", "What"]
QBENCH_CONCERNS = ["Global Distortion", "Global Others", "Local Distortion", "Local Others"]


@dataclass(frozen=True)
class QBenchItem:
    img_path: str
    colour: str
    question: str
    candidates: tuple[str, ...]
    correct: str
    type: int
    concern: int


def qbench_items() -> list[QBenchItem]:
    return [
        QBenchItem("00001.jpg", "red", "Is the image red?", ("Yes", "No"), "Yes", 0, 0),
        QBenchItem(
            "00002.jpg", "blue", "How is the colour of image 2?", ("red", "blue", "green"), "blue", 1, 1
        ),
        QBenchItem(
            "00003.jpg",
            "green",
            "What colour dominates image 3?",
            ("yellow", "red", "blue", "green"),
            "green",
            2,
            2,
        ),
        QBenchItem("00004.jpg", "yellow", "Is the image blue?", ("Yes", "No"), "No", 0, 3),
        QBenchItem("sub/00005.png", "red", "What colour is image 5?", ("blue", "red"), "red", 2, 0),
    ]


def write_qbench(root: Path, items: list[QBenchItem] | None = None, names: bool = False) -> Path:
    """`<root>/qbench/llvisionqa_dev.json` and `images/<img_path>`; type/concern as the authors' integers,
    or (names=True) as strings."""
    folder = root / "qbench"
    rows = []
    for item in items or qbench_items():
        save(image(item.colour), folder / "images" / item.img_path)
        rows.append(
            {
                "img_path": item.img_path,
                "question": item.question,
                "candidates": list(item.candidates),
                "correct_ans": item.correct,
                "type": QBENCH_TYPES[item.type] if names else item.type,
                "concern": QBENCH_CONCERNS[item.concern] if names else item.concern,
            }
        )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "llvisionqa_dev.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return folder


def write_qbench_parquet(root: Path, items: list[QBenchItem] | None = None) -> Path:
    """A q-future/Q-Bench-HF-like snapshot: `data/dev-*.parquet` (and a test file that must be ignored)."""
    import datasets

    items = items or qbench_items()
    rows: dict[str, list] = {"id": [], "image": [], "question": []}
    rows |= {f"option{i}": [] for i in range(4)}
    rows |= {"question_type": [], "question_concern": [], "correct_choice": []}
    for n, item in enumerate(items):
        padded = [*item.candidates, *["N/A"] * (4 - len(item.candidates))]
        rows["id"].append(n)
        rows["image"].append(image(item.colour))
        rows["question"].append(item.question)
        for i in range(4):
            rows[f"option{i}"].append(padded[i])
        rows["question_type"].append(item.type)
        rows["question_concern"].append(item.concern)
        rows["correct_choice"].append("ABCD"[item.candidates.index(item.correct)])
    types = {"id": "int64", "question_type": "int64", "question_concern": "int64"}
    features = datasets.Features(
        {k: datasets.Image() if k == "image" else datasets.Value(types.get(k, "string")) for k in rows}
    )
    folder = root / "qbench" / "data"
    folder.mkdir(parents=True, exist_ok=True)
    table = datasets.Dataset.from_dict(rows, features=features)
    table.to_parquet(str(folder / "dev-00000-of-00001.parquet"))
    table.select(range(1)).to_parquet(str(folder / "test-00000-of-00001.parquet"))
    return folder


FIXTURES = {"seed_image": write_seed, "scienceqa_img": write_sqa, "qbench_dev": write_qbench}
