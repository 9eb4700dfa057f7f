"""Fixtures of the judged benchmarks in the authors' layouts (and as HF parquet snapshots): MM-Vet and
LLaVA-Bench-in-the-Wild, each image a small solid colour."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tests.support.fixtures import image, save

# --- MM-Vet --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MMVetItem:
    key: str
    imagename: str
    colour: str
    question: str
    answer: str
    capability: tuple[str, ...]


def mmvet_items() -> list[MMVetItem]:
    return [
        MMVetItem("v1_0", "v1_0.png", "red", "Which two colours are shown?", "red<AND>blue", ("rec", "spat")),
        MMVetItem("v1_1", "v1_1.jpg", "blue", "What colour is the picture?", "blue<OR>navy", ("rec",)),
        MMVetItem("v1_2", "v1_2.png", "green", "What is 3 + 4 as written?", "7", ("ocr", "math")),
        MMVetItem(
            "v1_3",
            "v1_3.jpg",
            "yellow",
            "Describe the picture in detail.",
            "A plain yellow rectangle, wider than it is tall, with nothing else in it.",
            ("rec", "gen", "know"),
        ),
    ]


def write_mmvet(root: Path, items: list[MMVetItem] | None = None) -> Path:
    """`<root>/mmvet/mm-vet.json` ({key: {imagename, question, answer, capability}}) and `images/`."""
    folder = root / "mmvet"
    data = {}
    for item in items or mmvet_items():
        save(image(item.colour), folder / "images" / item.imagename)
        data[item.key] = {
            "imagename": item.imagename,
            "capability": list(item.capability),
            "question": item.question,
            "answer": item.answer,
        }
    (folder / "mm-vet.json").write_text(json.dumps(data, indent=4), encoding="utf-8")
    return folder


def write_mmvet_parquet(root: Path, items: list[MMVetItem] | None = None) -> Path:
    """An lmms-lab/MMVet-like snapshot: `data/test-*.parquet`, capability as a comma-separated string."""
    import datasets

    items = items or mmvet_items()
    rows = {
        "question_id": [i.key for i in items],
        "image": [image(i.colour) for i in items],
        "question": [i.question for i in items],
        "answer": [i.answer for i in items],
        "image_source": [i.imagename for i in items],
        "capability": [",".join(i.capability) for i in items],
    }
    features = datasets.Features(
        {k: datasets.Image() if k == "image" else datasets.Value("string") for k in rows}
    )
    folder = root / "mmvet" / "data"
    folder.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_dict(rows, features=features).to_parquet(
        str(folder / "test-00000-of-00001.parquet")
    )
    return folder.parent


# --- LLaVA-Bench-in-the-Wild ---------------------------------------------------------------------------

LLAVA_BENCH_IMAGES = {
    "001.jpg": ("red", "A red square card lying on a white desk."),
    "002.jpg": ("green", "A green traffic light at night, seen from a car."),
}


@dataclass(frozen=True)
class LlavaBenchItem:
    question_id: int
    image: str
    text: str
    category: str
    reference: str


def llava_bench_items() -> list[LlavaBenchItem]:
    return [
        LlavaBenchItem(0, "001.jpg", "What colour is the card?", "conv", "The card is red."),
        LlavaBenchItem(
            1,
            "001.jpg",
            "Describe this photo in detail.",
            "detail",
            "A red square card lies on a plain white desk; nothing else is in view.",
        ),
        LlavaBenchItem(
            2, "001.jpg", "Why might someone keep this card?", "complex", "It could be a colour sample."
        ),
        LlavaBenchItem(3, "002.jpg", "Can the car go?", "conv", "Yes, the light is green."),
        LlavaBenchItem(
            4,
            "002.jpg",
            "What should the driver watch for?",
            "complex",
            "Pedestrians still crossing, even though the light is green.",
        ),
    ]


def write_llava_bench(root: Path, items: list[LlavaBenchItem] | None = None) -> Path:
    """`<root>/llava_bench_wild/questions.jsonl`, `context.jsonl`, `answers_gpt4.jsonl` and `images/`."""
    folder = root / "llava_bench_wild"
    items = items or llava_bench_items()
    for name, (colour, _) in LLAVA_BENCH_IMAGES.items():
        save(image(colour), folder / "images" / name)
    context = [
        {"id": f"{n:03d}", "image": name, "caption": caption}
        for n, (name, (_, caption)) in enumerate(LLAVA_BENCH_IMAGES.items(), 1)
    ]
    questions = [
        {"question_id": i.question_id, "image": i.image, "text": i.text, "category": i.category}
        for i in items
    ]
    answers = [
        {
            "question_id": i.question_id,
            "text": i.reference,
            "answer_id": f"a{i.question_id}",
            "model_id": "gpt-4",
        }
        for i in items
    ]
    for name, rows in (("context", context), ("questions", questions), ("answers_gpt4", answers)):
        lines = "".join(json.dumps(r) + "\n" for r in rows)
        (folder / f"{name}.jsonl").write_text(lines, encoding="utf-8")
    return folder


def write_llava_bench_parquet(root: Path, items: list[LlavaBenchItem] | None = None) -> Path:
    """An lmms-lab/llava-bench-in-the-wild-like snapshot: `data/train-*.parquet`."""
    import datasets

    items = items or llava_bench_items()
    rows = {
        "question_id": [i.question_id for i in items],
        "question": [i.text for i in items],
        "image": [image(LLAVA_BENCH_IMAGES[i.image][0]) for i in items],
        "caption": [LLAVA_BENCH_IMAGES[i.image][1] for i in items],
        "gpt_answer": [i.reference for i in items],
        "category": [i.category for i in items],
        "image_id": [i.image.removesuffix(".jpg") for i in items],
    }
    kinds = {"image": datasets.Image(), "question_id": datasets.Value("int64")}
    features = datasets.Features({k: kinds.get(k, datasets.Value("string")) for k in rows})
    folder = root / "llava_bench_wild" / "data"
    folder.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_dict(rows, features=features).to_parquet(
        str(folder / "train-00000-of-00001.parquet")
    )
    return folder.parent


FIXTURES = {"mmvet": write_mmvet, "llava_bench_wild": write_llava_bench}
