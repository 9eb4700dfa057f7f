"""MME (Fu et al., 2023, "MME: A Comprehensive Evaluation Benchmark for Multimodal LLMs").

Reads `<root>/mme/MME_Benchmark_release_version/<subtask>/` in both release sub-layouts
(`images/` + `questions_answers_YN/`, or image and txt side by side), or a local snapshot of the
lmms-lab/MME parquet files. 14 subtasks, 2374 yes/no questions, two per image.
Metrics (official `eval_tool/calculation.py`): per subtask acc + acc_plus (pairs by image);
perception (10 subtasks, max 2000), cognition (4 subtasks, max 800), total. Primary: perception.

Sample ids are the image path as LLaVA's `llava_mme.jsonl` writes it (`artwork/images/1.jpg`,
`code_reasoning/0020.png`) plus `#k`, the question's position in its pair.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from evalkit.data.images import ImageRef, file_ref
from evalkit.data.readers import (
    Dataset,
    Sample,
    fingerprint,
    read_benchmark,
    read_parquet_rows,
    read_text_lines,
)
from evalkit.errors import InputError
from evalkit.protocols import SHORT
from evalkit.records import Prediction
from evalkit.scoring.group import accuracy, all_correct_rate, group_by
from evalkit.scoring.outcomes import label_match
from evalkit.scoring.twins import mme as twin
from evalkit.scoring.yesno import yes_no_prefix, yes_no_prefix_lenient
from evalkit.task import Task, Unit, Variant

SUFFIX = "Please answer yes or no."
RELEASE = "MME_Benchmark_release_version"
IMAGE_EXTS = (".jpg", ".png", ".jpeg")
PERCEPTION = frozenset("existence count position color posters celebrity scene landmark artwork ocr".split())
COGNITION = frozenset("commonsense_reasoning numerical_calculation text_translation code_reasoning".split())
TOTALS = {"perception": PERCEPTION, "cognition": COGNITION}


def _sample(
    subtask: str, image_path: str, k: int, qa: tuple[str, str], image: ImageRef, error: str | None
) -> Sample:
    meta = {"category": subtask, "image_id": image_path}
    target = qa[1].strip().lower()
    return Sample(f"{image_path}#{k}", (image,), qa[0], target, meta, error)


def _question_lines(txt: Path) -> list[tuple[str, str]]:
    """The (question, Yes|No) lines of one image's txt file; a malformed line names file and line."""
    pairs = []
    for number, line in read_text_lines(txt):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2 or fields[1].strip().lower() not in ("yes", "no"):
            raise InputError(f"{txt}:{number}: expected 'question<TAB>Yes|No', got {line!r}")
        pairs.append((fields[0], fields[1]))
    return pairs


def _read_authors(folder: Path) -> Dataset:
    release = folder / RELEASE if (folder / RELEASE).is_dir() else folder
    samples: list[Sample] = []
    txts: list[Path] = []
    for sub in sorted(p for p in release.iterdir() if p.is_dir()):
        nested = (sub / "questions_answers_YN").is_dir()  # artwork, celebrity, landmark, posters, scene
        qa_dir, img_dir = (sub / "questions_answers_YN", sub / "images") if nested else (sub, sub)
        for txt in sorted(qa_dir.glob("*.txt")):
            txts.append(txt)
            image = next((p for e in IMAGE_EXTS if (p := img_dir / (txt.stem + e)).exists()), None)
            error = None if image else f"image not found for {txt}: {img_dir}/{txt.stem}.(jpg|png)"
            image = image or img_dir / f"{txt.stem}.jpg"
            image_path = f"{sub.name}/images/{image.name}" if nested else f"{sub.name}/{image.name}"
            for k, qa in enumerate(_question_lines(txt)):
                samples.append(_sample(sub.name, image_path, k, qa, file_ref(image), error))
    if not samples:
        raise InputError(f"no MME subtask folders with question files under {release}")
    return Dataset(samples=samples, path=release, format="authors", fingerprint=fingerprint(txts))


def _read_parquet(folder: Path, files: list[Path]) -> Dataset:
    samples: list[Sample] = []
    seen: dict[str, int] = {}
    for row in read_parquet_rows(files):
        v = row.require("question_id", "question", "answer", "category")
        k = seen[v["question_id"]] = seen.get(v["question_id"], -1) + 1
        samples.append(
            _sample(v["category"], v["question_id"], k, (v["question"], v["answer"]), row.image(), None)
        )
    return Dataset(samples=samples, path=folder, format="hf-parquet", fingerprint=fingerprint(files))


def load(folder: Path) -> Dataset:
    return read_benchmark(folder, "MME", _read_authors, _read_parquet)


def prompt_llava(sample: Sample) -> str:
    """LLaVA's llava_mme.jsonl: the instruction dropped (single or double space before it), SHORT added."""
    return sample.question.replace(SUFFIX, "").strip() + SHORT


def prompt_lmms(sample: Sample) -> str:
    """lmms-eval mme_doc_to_text: strip, remove " Please answer yes or no.", add the post prompt."""
    return sample.question.strip().replace(" " + SUFFIX, "") + SHORT


def aggregate(predictions: list[Prediction]) -> dict[str, float]:
    """Per subtask acc + acc_plus (both questions of an image right, paired by image, not by order)."""
    metrics: dict[str, float] = {}
    for subtask, preds in sorted(group_by(predictions, lambda p: p.meta["category"].lower()).items()):
        acc = accuracy(p.score for p in preds)
        acc_plus = all_correct_rate(preds, lambda p: p.meta["image_id"], lambda p: p.score == 1.0)
        metrics |= {subtask: round(acc + acc_plus, 6), f"{subtask}_acc": acc, f"{subtask}_acc_plus": acc_plus}
    for family, subtasks in (("perception", PERCEPTION), ("cognition", COGNITION)):
        if present := [metrics[s] for s in subtasks if s in metrics]:  # none (a subset): no number, not 0
            metrics[family] = round(sum(present), 6)
    metrics["total"] = round(metrics.get("perception", 0.0) + metrics.get("cognition", 0.0), 6)
    return metrics


TASK = Task(
    name="mme",
    version=1,
    folder="mme",
    description="MME perception + cognition, 14 yes/no subtasks (acc + acc_plus)",
    load=load,
    variants={
        "llava": Variant(prompt_llava, label_match(yes_no_prefix), max_new_tokens=128, image_mode="pad"),
        "lmms-eval": Variant(prompt_lmms, label_match(yes_no_prefix_lenient), max_new_tokens=16),
        "vlmevalkit": Variant(),  # the question as stored ("Please answer yes or no." kept)
    },
    aggregate=aggregate,
    primary="perception",
    kind="yes_no",
    exports=("mme",),
    # an image's two questions are one unit, drawn within its subtask (the subtasks' sizes are fixed)
    unit=Unit(
        ("category", "image_id"), "image pair", within=("category",), vectorised=partial(twin, totals=TOTALS)
    ),
)
