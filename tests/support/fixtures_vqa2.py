"""Short-answer and yes/no benchmark fixtures in the authors' layouts (and as HF parquet snapshots):
TextVQA val, GQA test-dev balanced and HallusionBench.

Features exercised:
- TextVQA: two questions on one image, an image whose Rosetta entry has no OCR tokens, answers that only
  agree after the EvalAI processor ("DAKOTA.", "dakota,", "the dakota"; "two" and "2"), an upper-case word
  in a question (lmms-eval's `capitalize()` lower-cases it).
- GQA: all five structural types, two questions on one image, a question with isBalanced false (skipped),
  an answer with inner punctuation ("t-shirt").
- HallusionBench: VD and VS, a set with an original (visual_input 1) and an edited (2) figure asked the
  same questions, a VS set whose text-only version (visual_input 0, filename null) is skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.support.fixtures import image, save

# --- TextVQA -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextVQAItem:
    question_id: int
    image_id: str
    colour: str
    question: str
    answers: tuple[str, ...]


TEXTVQA_OCR = {
    "0054c91397f2fe05": ["DAKOTA", "DIGITAL", "Single-Use", "Camera"],
    "00685bc495504d61": [],  # Rosetta found no text: LLaVA's prompt keeps an empty OCR line
    "0a0c6b8d5e2f1a33": ["STOP", "AHEAD"],
}
TEXTVQA_COLOURS = {"0054c91397f2fe05": "red", "00685bc495504d61": "blue", "0a0c6b8d5e2f1a33": "green"}


def textvqa_items() -> list[TextVQAItem]:
    def item(qid: int, image_id: str, question: str, answers: list[str]) -> TextVQAItem:
        assert len(answers) == 10
        return TextVQAItem(qid, image_id, TEXTVQA_COLOURS[image_id], question, tuple(answers))

    return [
        # processed: dakota x7, "dakota digital" x2, kodak x1
        item(
            34602,
            "0054c91397f2fe05",
            "what brand is the camera?",
            ["Dakota"] * 3 + ["dakota digital"] * 2 + ["DAKOTA."] * 2 + ["dakota,", "the dakota", "kodak"],
        ),
        # processed: digital x2, "single use" x4 ("single-use": hyphen -> space), disposable x3, film
        item(
            34603,
            "0054c91397f2fe05",
            "what kind of camera is this?",
            ["digital"] * 2 + ["single use"] * 2 + ["single-use"] * 2 + ["disposable"] * 3 + ["film"],
        ),
        # processed: "2" x6 (two -> 2), "22" x4; the most common answer's first spelling is "two"
        item(
            34604,
            "00685bc495504d61",
            "what number is on the jersey?",
            ["two"] + ["2"] * 4 + ["two"] + ["22"] * 4,
        ),
        # processed: stop x7, "stop ahead" x3 ("Stop Ahead!": the "!" becomes a space)
        item(
            34605,
            "0a0c6b8d5e2f1a33",
            "what does the STOP sign say?",
            ["stop"] * 7 + ["stop ahead"] * 2 + ["Stop Ahead!"],
        ),
        item(34606, "0a0c6b8d5e2f1a33", "what colour is the sign?", ["green"] * 10),
    ]


def _textvqa_question(item: TextVQAItem) -> dict[str, object]:
    return {
        "question": item.question,
        "image_id": item.image_id,
        "image_classes": ["Poster"],
        "flickr_original_url": f"https://farm.example/{item.image_id}_o.jpg",
        "flickr_300k_url": f"https://farm.example/{item.image_id}_z.jpg",
        "image_width": 40,
        "image_height": 24,
        "answers": list(item.answers),
        "question_tokens": item.question.rstrip("?").split(),
        "question_id": item.question_id,
        "set_name": "val",
    }


def write_textvqa(root: Path, items: list[TextVQAItem] | None = None) -> Path:
    """`<root>/textvqa/TextVQA_0.5.1_val.json`, `TextVQA_Rosetta_OCR_v0.2_val.json` and
    `train_images/<image_id>.jpg`."""
    folder = root / "textvqa"
    items = items or textvqa_items()
    questions = {"dataset_type": "val", "dataset_name": "textvqa", "dataset_version": "0.5.1", "data": []}
    for item in items:
        questions["data"].append(_textvqa_question(item))
        save(image(item.colour), folder / "train_images" / f"{item.image_id}.jpg")
    ocr = {
        "dataset_type": "val",
        "dataset_name": "textvqa",
        "dataset_version": "0.2",
        "data": [
            {
                "image_id": image_id,
                "ocr_tokens": tokens,
                "ocr_info": [
                    {
                        "word": t,
                        "bounding_box": {"top_left_x": 0.1, "top_left_y": 0.1, "width": 0.2, "height": 0.1},
                    }
                    for t in tokens
                ],
            }
            for image_id, tokens in TEXTVQA_OCR.items()
        ],
    }
    (folder / "TextVQA_0.5.1_val.json").write_text(json.dumps(questions), encoding="utf-8")
    (folder / "TextVQA_Rosetta_OCR_v0.2_val.json").write_text(json.dumps(ocr), encoding="utf-8")
    return folder


def write_textvqa_parquet(root: Path, items: list[TextVQAItem] | None = None) -> Path:
    """An lmms-lab/textvqa-like snapshot: `data/validation-*.parquet` (and a test file without answers,
    which must be ignored)."""
    import datasets

    features = datasets.Features(
        {
            "image_id": datasets.Value("string"),
            "question_id": datasets.Value("int64"),
            "question": datasets.Value("string"),
            "answers": datasets.Sequence(datasets.Value("string")),
            "ocr_tokens": datasets.Sequence(datasets.Value("string")),
            "image": datasets.Image(),
        }
    )
    folder = root / "textvqa" / "data"
    folder.mkdir(parents=True, exist_ok=True)
    items = items or textvqa_items()
    for split, chosen, answers in (("validation", items, True), ("test", items[:1], False)):
        rows = {
            "image_id": [i.image_id for i in chosen],
            "question_id": [i.question_id + (0 if answers else 100_000) for i in chosen],
            "question": [i.question for i in chosen],
            "answers": [list(i.answers) if answers else None for i in chosen],
            "ocr_tokens": [TEXTVQA_OCR[i.image_id] for i in chosen],
            "image": [image(i.colour) for i in chosen],
        }
        datasets.Dataset.from_dict(rows, features=features).to_parquet(
            str(folder / f"{split}-00000-of-00001.parquet")
        )
    return folder


# --- GQA -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GqaItem:
    qid: str
    image_id: str
    colour: str
    question: str
    answer: str
    structural: str
    semantic: str
    balanced: bool = True


def gqa_items() -> list[GqaItem]:
    return [
        GqaItem("201307251", "n161313", "red", "Is the picture red?", "yes", "verify", "attr"),
        GqaItem("201640614", "n161313", "red", "Who is wearing the dress?", "woman", "query", "rel"),
        GqaItem("202225914", "n235859", "blue", "Is the cup blue or green?", "blue", "choose", "attr"),
        GqaItem("20968379", "n336443", "green", "Are there both cups and plates?", "no", "logical", "obj"),
        GqaItem(
            "201497368",
            "n336443",
            "green",
            "Do the cup and the plate have the same colour?",
            "yes",
            "compare",
            "attr",
        ),
        GqaItem("2063234", "n100001", "yellow", "What is the man wearing?", "t-shirt", "query", "rel"),
        GqaItem("20999999", "n100001", "yellow", "Is the man tall?", "yes", "verify", "attr", balanced=False),
    ]


def _gqa_question(item: GqaItem) -> dict[str, object]:
    return {
        "semantic": [{"operation": "select", "dependencies": [], "argument": "scene"}],
        "entailed": [],
        "equivalent": [item.qid],
        "question": item.question,
        "imageId": item.image_id,
        "isBalanced": item.balanced,
        "groups": {"global": None, "local": f"10c-{item.structural}"},
        "answer": item.answer,
        "semanticStr": "select: scene",
        "annotations": {"answer": {}, "question": {}, "fullAnswer": {}},
        "types": {
            "detailed": f"{item.structural}Attr",
            "semantic": item.semantic,
            "structural": item.structural,
        },
        "fullAnswer": f"The answer is {item.answer}.",
    }


def write_gqa(root: Path, items: list[GqaItem] | None = None) -> Path:
    """`<root>/gqa/testdev_balanced_questions.json` and `images/<imageId>.jpg`."""
    folder = root / "gqa"
    items = items or gqa_items()
    for item in items:
        save(image(item.colour), folder / "images" / f"{item.image_id}.jpg")
    questions = {item.qid: _gqa_question(item) for item in items}
    (folder / "testdev_balanced_questions.json").write_text(json.dumps(questions), encoding="utf-8")
    return folder


def write_gqa_parquet(root: Path, items: list[GqaItem] | None = None) -> Path:
    """An lmms-lab/GQA-like snapshot: `testdev_balanced_instructions/testdev-*.parquet` and the images in
    `testdev_balanced_images/testdev-*.parquet`, joined on imageId."""
    import datasets

    items = items or gqa_items()
    folder = root / "gqa"
    types = {k: datasets.Value("string") for k in ("structural", "semantic", "detailed")}
    questions = {
        "id": [i.qid for i in items],
        "imageId": [i.image_id for i in items],
        "question": [i.question for i in items],
        "answer": [i.answer for i in items],
        "fullAnswer": [f"The answer is {i.answer}." for i in items],
        "isBalanced": [i.balanced for i in items],
        "types": [{"structural": i.structural, "semantic": i.semantic, "detailed": "x"} for i in items],
    }
    features = {k: datasets.Value("string") for k in questions} | {
        "isBalanced": datasets.Value("bool"),
        "types": types,
    }
    _parquet(questions, features, folder / "testdev_balanced_instructions" / "testdev-00000-of-00001.parquet")
    colours = {i.image_id: i.colour for i in items}
    images = {"id": list(colours), "image": [image(c) for c in colours.values()]}
    features = {"id": datasets.Value("string"), "image": datasets.Image()}
    _parquet(images, features, folder / "testdev_balanced_images" / "testdev-00000-of-00001.parquet")
    return folder


def _parquet(rows: dict[str, list], features: dict[str, object], path: Path) -> Path:
    import datasets

    path.parent.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_dict(rows, features=datasets.Features(features)).to_parquet(str(path))
    return path


# --- HallusionBench ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HallusionItem:
    category: str
    subcategory: str
    set_id: str
    figure_id: str
    question_id: str
    question: str
    gt_answer: str  # "1" yes / "0" no
    visual_input: str  # "0" no image, "1" original, "2" edited
    colour: str = ""

    @property
    def sample_id(self) -> str:
        return "/".join((self.category, self.subcategory, self.set_id, self.figure_id, self.question_id))

    @property
    def image_name(self) -> str | None:
        if self.visual_input == "0":
            return None
        return f"{self.category}/{self.subcategory}/{self.set_id}_{self.figure_id}.png"


def hallusion_items() -> list[HallusionItem]:
    def vd(fig: str, qid: str, question: str, gt: str, colour: str) -> HallusionItem:
        return HallusionItem(
            "VD", "illusion", "0", fig, qid, question, gt, "1" if fig == "0" else "2", colour
        )

    def vs(fig: str, qid: str, question: str, gt: str, colour: str = "") -> HallusionItem:
        return HallusionItem("VS", "chart", "0", fig, qid, question, gt, "0" if fig == "0" else "1", colour)

    return [
        vd("0", "0", "Is the image red?", "1", "red"),
        vd("0", "1", "Is the image blue?", "0", "red"),
        vd("1", "0", "Is the image red?", "0", "blue"),  # the edited figure flips both answers
        vd("1", "1", "Is the image blue?", "1", "blue"),
        vs("0", "0", "Is the chart green?", "1"),  # text only: skipped
        vs("0", "1", "Is the chart yellow?", "0"),
        vs("1", "0", "Is the chart green?", "1", "green"),
        vs("1", "1", "Is the chart yellow?", "0", "green"),
        HallusionItem("VD", "math", "1", "0", "0", "Is the figure yellow?", "1", "1", "yellow"),
    ]


def _hallusion_entry(item: HallusionItem, old_paths: bool) -> dict[str, object]:
    prefix = "./hallusion_bench/" if old_paths else "./"
    return {
        "category": item.category,
        "subcategory": item.subcategory,
        "visual_input": item.visual_input,
        "set_id": item.set_id,
        "figure_id": item.figure_id,
        "sample_note": "colour",
        "question_id": item.question_id,
        "question": item.question,
        "gt_answer_details": f"The answer is {'yes' if item.gt_answer == '1' else 'no'}.",
        "gt_answer": item.gt_answer,
        "filename": prefix + item.image_name if item.image_name else None,
    }


def write_hallusionbench(
    root: Path, items: list[HallusionItem] | None = None, *, old_paths: bool = False
) -> Path:
    """`<root>/hallusionbench/HallusionBench.json` and the images of hallusion_bench.zip in
    `hallusion_bench/<category>/<subcategory>/<set>_<figure>.png`. File names as in the current release
    ("./VD/illusion/0_0.png"), or as in the first one ("./hallusion_bench/VD/...") with `old_paths`."""
    folder = root / "hallusionbench"
    items = items or hallusion_items()
    for item in items:
        if item.image_name:
            save(image(item.colour), folder / "hallusion_bench" / item.image_name)
    entries = [_hallusion_entry(i, old_paths) for i in items]
    (folder / "HallusionBench.json").write_text(json.dumps(entries), encoding="utf-8")
    return folder


def write_hallusionbench_parquet(root: Path, items: list[HallusionItem] | None = None) -> Path:
    """An lmms-lab/HallusionBench-like snapshot: `data/image-*.parquet` and `data/non_image-*.parquet`
    (the text-only questions, which must be ignored)."""
    import datasets

    items = items or hallusion_items()
    folder = root / "hallusionbench" / "data"
    for split in ("image", "non_image"):
        chosen = [i for i in items if (i.visual_input != "0") == (split == "image")]
        rows: dict[str, list] = {
            k: [] for k in _hallusion_entry(items[0], False) if k not in ("sample_note",)
        }
        rows["image"] = []
        for item in chosen:
            entry = _hallusion_entry(item, False)
            for k in rows:
                if k != "image":
                    rows[k].append(entry[k])
            rows["image"].append(image(item.colour) if item.image_name else None)
        features = {k: datasets.Value("string") for k in rows} | {"image": datasets.Image()}
        _parquet(rows, features, folder / f"{split}-00000-of-00001.parquet")
    return folder


FIXTURES: dict[str, Callable[[Path], object]] = {
    "textvqa_val": write_textvqa,
    "gqa": write_gqa,
    "hallusionbench": write_hallusionbench,
    "hallusionbench_judge": write_hallusionbench,
}
