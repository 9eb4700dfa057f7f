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

from pathlib import Path

from evalkit.data.images import ImageRef, file_ref
from evalkit.data.readers import Dataset, Sample, fingerprint, parquet_files, read_parquet_rows, require_dir
from evalkit.errors import InputError
from evalkit.protocols import SHORT
from evalkit.records import Prediction
from evalkit.scoring.group import accuracy, all_correct_rate, group_by
from evalkit.scoring.outcomes import label_match, outcome_counts
from evalkit.scoring.yesno import yes_no_prefix, yes_no_prefix_lenient
from evalkit.task import Task, Variant

SUFFIX = "Please answer yes or no."
RELEASE = "MME_Benchmark_release_version"
IMAGE_EXTS = (".jpg", ".png", ".jpeg")
PERCEPTION = (
    "existence",
    "count",
    "position",
    "color",
    "posters",
    "celebrity",
    "scene",
    "landmark",
    "artwork",
    "ocr",
)
COGNITION = ("commonsense_reasoning", "numerical_calculation", "text_translation", "code_reasoning")


def _sample(
    subtask: str,
    image_path: str,
    k: int,
    question: str,
    answer: str,
    image: ImageRef,
    error: str | None = None,
) -> Sample:
    return Sample(
        id=f"{image_path}#{k}",
        images=(image,),
        question=question,
        target=answer.strip().lower(),
        meta={"category": subtask, "image_id": image_path},
        error=error,
    )


def _read_authors(release: Path) -> Dataset:
    samples: list[Sample] = []
    txts: list[Path] = []
    for sub_dir in sorted(p for p in release.iterdir() if p.is_dir()):
        subtask = sub_dir.name
        nested = (sub_dir / "questions_answers_YN").is_dir()
        qa_dir, img_dir = (
            (sub_dir / "questions_answers_YN", sub_dir / "images") if nested else (sub_dir, sub_dir)
        )
        for txt in sorted(qa_dir.glob("*.txt")):
            txts.append(txt)
            image = next(
                (img_dir / (txt.stem + e) for e in IMAGE_EXTS if (img_dir / (txt.stem + e)).exists()), None
            )
            rel = f"{subtask}/images/" if nested else f"{subtask}/"
            image_path = rel + (image.name if image else txt.stem + ".jpg")
            error = None if image else f"image not found for {txt}: {img_dir}/{txt.stem}.(jpg|png)"
            lines = [ln for ln in txt.read_text(encoding="utf-8").splitlines() if ln.strip()]
            for k, line in enumerate(lines):
                fields = line.split("\t")
                if len(fields) != 2 or fields[1].strip().lower() not in ("yes", "no"):
                    raise InputError(f"{txt}:{k + 1}: expected 'question<TAB>Yes|No', got {line!r}")
                ref = file_ref(image or img_dir / (txt.stem + ".jpg"))
                samples.append(_sample(subtask, image_path, k, fields[0], fields[1], ref, error))
    if not samples:
        raise InputError(f"no MME subtask folders with question files under {release}")
    return Dataset(samples=samples, path=release, format="authors", fingerprint=fingerprint(txts))


def _read_parquet(folder: Path, files: list[Path]) -> Dataset:
    samples: list[Sample] = []
    seen: dict[str, int] = {}
    for row in read_parquet_rows(files):
        v = row.values
        if any(v.get(c) is None for c in ("question_id", "question", "answer", "category")):
            raise InputError(f"{row.where}: missing question_id/question/answer/category")
        k = seen[v["question_id"]] = seen.get(v["question_id"], -1) + 1
        samples.append(_sample(v["category"], v["question_id"], k, v["question"], v["answer"], row.image()))
    return Dataset(samples=samples, path=folder, format="hf-parquet", fingerprint=fingerprint(files))


def load(folder: Path) -> Dataset:
    require_dir(folder, "MME data")
    if files := parquet_files(folder):
        return _read_parquet(folder, files)
    release = folder / RELEASE if (folder / RELEASE).is_dir() else folder
    return _read_authors(release)


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
    metrics["perception"] = round(sum(metrics.get(s, 0.0) for s in PERCEPTION), 6)
    metrics["cognition"] = round(sum(metrics.get(s, 0.0) for s in COGNITION), 6)
    metrics["total"] = round(metrics["perception"] + metrics["cognition"], 6)
    return metrics | outcome_counts(predictions)


TASK = Task(
    name="mme",
    version=1,
    folder="mme",
    description="MME perception + cognition, 14 yes/no subtasks (acc + acc_plus)",
    load=load,
    variants={
        "llava": Variant(prompt_llava, label_match(yes_no_prefix), max_new_tokens=128, image_mode="pad"),
        "lmms-eval": Variant(prompt_lmms, label_match(yes_no_prefix_lenient), max_new_tokens=16),
    },
    aggregate=aggregate,
    primary="perception",
    exports=("mme",),
)
