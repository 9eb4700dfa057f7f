"""Benchmark fixtures written in the authors' own layouts (and as HF parquet snapshots).

Images are small generated PNG/JPEG files, so the same loaders that read the real releases read these.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220), "yellow": (230, 220, 30)}


def image(colour: str = "red", size: tuple[int, int] = (40, 24)) -> Image.Image:
    """A solid-colour image, deliberately not square (so LLaVA's pad mode changes it)."""
    return Image.new("RGB", size, COLOURS[colour])


def save(img: Image.Image, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def png_bytes(img: Image.Image) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass(frozen=True)
class MMEItem:
    subtask: str
    stem: str
    colour: str
    questions: tuple[tuple[str, str], tuple[str, str]]  # (question, Yes|No) x 2


def mme_items() -> list[MMEItem]:
    """Two subtasks of each release layout: `existence`/`count` flat, `artwork`/`OCR` nested."""

    def q(colour: str, truth: bool, double: bool = False) -> tuple[str, str]:
        gap = "  " if double else " "
        return (f"Is the image {colour}?{gap}Please answer yes or no.", "Yes" if truth else "No")

    return [
        MMEItem("existence", "000000006040", "red", (q("red", True), q("blue", False))),
        MMEItem("existence", "000000044279", "blue", (q("blue", True), q("green", False))),
        MMEItem("count", "000000055072", "green", (q("green", True), q("red", False, double=True))),
        MMEItem("artwork", "10002", "yellow", (q("yellow", True), q("red", False))),
        MMEItem("artwork", "10048", "red", (q("red", True), q("yellow", False))),
        MMEItem("OCR", "0005", "blue", (q("blue", True), q("red", False))),
        MMEItem("code_reasoning", "0020", "green", (q("green", True), q("blue", False))),
    ]


NESTED = {"artwork", "celebrity", "landmark", "posters", "scene"}


def write_mme(root: Path, items: list[MMEItem] | None = None) -> Path:
    """`<root>/mme/MME_Benchmark_release_version/<subtask>/...` in both sub-layouts."""
    release = root / "mme" / "MME_Benchmark_release_version"
    for item in items or mme_items():
        sub = release / item.subtask
        if item.subtask in NESTED:
            save(image(item.colour), sub / "images" / f"{item.stem}.jpg")
            txt = sub / "questions_answers_YN" / f"{item.stem}.txt"
        else:
            save(image(item.colour), sub / f"{item.stem}.png")
            txt = sub / f"{item.stem}.txt"
        txt.parent.mkdir(parents=True, exist_ok=True)
        txt.write_text("".join(f"{qq}\t{a}\n" for qq, a in item.questions), encoding="utf-8")
    return release


def mme_image_path(item: MMEItem) -> str:
    return (
        f"{item.subtask}/images/{item.stem}.jpg"
        if item.subtask in NESTED
        else f"{item.subtask}/{item.stem}.png"
    )


def write_mme_parquet(root: Path, items: list[MMEItem] | None = None) -> Path:
    """An lmms-lab/MME-like snapshot: `mme/data/test-00000-of-00001.parquet` via `datasets`."""
    import datasets

    rows: dict[str, list] = {"question_id": [], "image": [], "question": [], "answer": [], "category": []}
    for item in items or mme_items():
        for question, answer in item.questions:
            rows["question_id"].append(mme_image_path(item))
            rows["image"].append(image(item.colour))
            rows["question"].append(question)
            rows["answer"].append(answer)
            rows["category"].append(item.subtask)
    features = datasets.Features(
        {
            "question_id": datasets.Value("string"),
            "image": datasets.Image(),
            "question": datasets.Value("string"),
            "answer": datasets.Value("string"),
            "category": datasets.Value("string"),
        }
    )
    folder = root / "mme" / "data"
    folder.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_dict(rows, features=features).to_parquet(
        str(folder / "test-00000-of-00001.parquet")
    )
    return folder


@dataclass(frozen=True)
class PopeItem:
    split: str
    question_id: int
    image: str
    colour: str
    object: str
    label: str


def pope_items() -> list[PopeItem]:
    items = []
    for base, (split, colours) in enumerate(
        (
            ("adversarial", ("red", "blue", "green", "red")),
            ("popular", ("blue", "yellow", "blue")),
            ("random", ("green", "green", "yellow")),
        )
    ):
        for i, colour in enumerate(colours, 1):
            asked = colour if i % 2 else "red" if colour != "red" else "blue"
            items.append(
                PopeItem(
                    split,
                    i,
                    f"COCO_val2014_{100 * (base + 1) + i:012d}.jpg",
                    colour,
                    asked,
                    "yes" if asked == colour else "no",
                )
            )
    return items


def write_pope(root: Path, items: list[PopeItem] | None = None) -> Path:
    """`<root>/pope/coco_pope_<split>.json` (JSON lines) and `<root>/coco/val2014/` images."""
    items = items or pope_items()
    by_split: dict[str, list[PopeItem]] = {}
    for item in items:
        by_split.setdefault(item.split, []).append(item)
        save(image(item.colour), root / "coco" / "val2014" / item.image)
    folder = root / "pope"
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in by_split.items():
        lines = [
            json.dumps(
                {
                    "question_id": r.question_id,
                    "image": r.image,
                    "text": f"Is the image {r.object}?",
                    "label": r.label,
                }
            )
            for r in rows
        ]
        (folder / f"coco_pope_{split}.json").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def write_pope_parquet(root: Path, items: list[PopeItem] | None = None) -> Path:
    import datasets

    rows: dict[str, list] = {
        "id": [],
        "question_id": [],
        "question": [],
        "answer": [],
        "image_source": [],
        "image": [],
        "category": [],
    }
    for n, item in enumerate(items or pope_items()):
        rows["id"].append(str(n))
        rows["question_id"].append(str(item.question_id))
        rows["question"].append(f"Is the image {item.object}?")
        rows["answer"].append(item.label)
        rows["image_source"].append(item.image.removesuffix(".jpg"))
        rows["image"].append(image(item.colour))
        rows["category"].append(item.split)
    features = datasets.Features(
        {k: datasets.Value("string") for k in rows if k != "image"} | {"image": datasets.Image()}
    )
    folder = root / "pope" / "data"
    folder.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_dict(rows, features=features).to_parquet(
        str(folder / "test-00000-of-00001.parquet")
    )
    return folder
