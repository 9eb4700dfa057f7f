"""POPE (Li et al., 2023, "Evaluating Object Hallucination in Large Vision-Language Models").

Reads `<root>/pope/coco_pope_{adversarial,popular,random}.json` (JSON lines: question_id, image, text,
label) with images from `<root>/coco/val2014/`, or a local snapshot of the lmms-lab/POPE parquet
files (question, answer, category, image). Yes/no object-existence questions, positive class "yes".
Metrics per split: accuracy, precision, recall, f1, yes_ratio (share of predictions that are yes);
`f1` and `accuracy` are the means over the three splits (LLaVA's zoo number is the mean F1).

Protocol llava parses with LLaVA's eval_pope rule (any reply without a negation word is yes);
lmms-eval requires the stripped lower-cased reply to be exactly yes/no. lmms-eval's own aggregate
reports the share of *ground-truth* yes as yes_ratio and pools all 9000 rows; evalkit reports the
predicted-yes share per split for both protocols, plus the pooled `all_*` keys lmms-eval shows.
Sample ids are `<split>/<question_id>` (question ids restart at 1 in each split's file).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from evalkit.data.images import ImageRef, file_ref, safe_join
from evalkit.data.readers import (
    ID,
    TEXT,
    Dataset,
    Sample,
    fingerprint,
    read_benchmark,
    read_json_lines,
    read_parquet_rows,
    require_dir,
    require_fields,
)
from evalkit.errors import InputError
from evalkit.protocols import SHORT
from evalkit.records import Prediction
from evalkit.scoring.binary import BinaryCounts, binary_counts
from evalkit.scoring.group import group_by, mean, percent
from evalkit.scoring.outcomes import label_match
from evalkit.scoring.twins import pope as twin
from evalkit.scoring.yesno import yes_no_exact, yes_no_negation
from evalkit.task import Task, Unit, Variant

SPLITS = ("adversarial", "popular", "random")
# LLaVA's llava_pope_test.jsonl numbers questions adversarial 1.., random 10000001.., popular 20000001..
LLAVA_OFFSETS = (("popular", 20_000_000), ("random", 10_000_000), ("adversarial", 0))


def from_llava_id(question_id: str) -> str:
    """The sample id of a question id from LLaVA's POPE answer files."""
    if not question_id.isdigit():
        raise InputError(f"not a LLaVA POPE question id: {question_id!r}")
    number = int(question_id)
    split, offset = next((s, o) for s, o in LLAVA_OFFSETS if number > o)
    return f"{split}/{number - offset}"


def _sample(
    split: str, question_id: object, question: str, label: str, image: ImageRef, image_id: str
) -> Sample:
    meta = {"category": split, "image_id": image_id}
    return Sample(f"{split}/{question_id}", (image,), question, str(label).strip().lower(), meta)


def _read_authors(folder: Path) -> Dataset:
    images = require_dir(folder.parent / "coco" / "val2014", "POPE images (COCO val2014)")
    present = [folder / f"coco_pope_{split}.json" for split in SPLITS]
    if missing := [f.name for f in present if not f.exists()]:
        raise InputError(f"POPE: {', '.join(missing)} not found in {folder} (all three splits are needed)")
    samples: list[Sample] = []
    for file in present:
        split = file.stem.removeprefix("coco_pope_")
        before = len(samples)
        for number, obj in read_json_lines(file):
            where = f"{file}:{number}"
            require_fields(obj, where, {"question_id": ID, "image": TEXT, "text": TEXT, "label": TEXT})
            image = file_ref(safe_join(images, obj["image"], where))
            samples.append(
                _sample(
                    split, obj["question_id"], obj["text"], _label(obj["label"], where), image, obj["image"]
                )
            )
        if len(samples) == before:
            raise InputError(f"{file}: no questions in it (each POPE split needs its questions)")
    return Dataset(samples=samples, path=folder, format="authors", fingerprint=fingerprint(present))


def _label(value: str, where: str) -> str:
    """The label, which POPE writes yes or no; anything else is refused (it would be scored as a no)."""
    if value.strip().lower() not in ("yes", "no"):
        raise InputError(f"{where}: label {value!r} is neither yes nor no")
    return value


def _read_parquet(folder: Path, files: list[Path]) -> Dataset:
    samples = []
    for row in read_parquet_rows(files):
        v = row.require("question_id", "question", "answer", "category")
        _label(str(v["answer"]), row.where)
        image_id = v.get("image_source") or ""
        samples.append(
            _sample(v["category"], v["question_id"], v["question"], v["answer"], row.image(), image_id)
        )
    return Dataset(samples=samples, path=folder, format="hf-parquet", fingerprint=fingerprint(files))


def load(folder: Path) -> Dataset:
    return read_benchmark(folder, "POPE", _read_authors, _read_parquet)


def prompt_llava(sample: Sample) -> str:
    return sample.question + SHORT


def prompt_lmms(sample: Sample) -> str:
    return sample.question.strip() + SHORT


def _split_metrics(prefix: str, counts: BinaryCounts) -> dict[str, float]:
    return {
        f"{prefix}_accuracy": percent(counts.accuracy),
        f"{prefix}_precision": percent(counts.precision),
        f"{prefix}_recall": percent(counts.recall),
        f"{prefix}_f1": percent(counts.f1),
        f"{prefix}_yes_ratio": percent(counts.positive_ratio),
    }


def aggregate(predictions: list[Prediction], unparsed_as: str | None = None) -> dict[str, float]:
    """Per split and pooled (`all_*`): accuracy, precision, recall, F1, yes-ratio. An unparsed reply is
    outside the confusion counts, unless `unparsed_as` names the answer it counts as (VLMEvalKit: "no")."""

    def counts(preds: list[Prediction]) -> BinaryCounts:
        pairs = ((p.answer if p.answer is not None else unparsed_as, p.meta["target"]) for p in preds)
        return binary_counts(pairs, positive="yes")

    metrics: dict[str, float] = {}
    by_split = group_by(predictions, lambda p: p.meta["category"])
    for split in sorted(by_split):
        metrics |= _split_metrics(split, counts(by_split[split]))
    metrics |= _split_metrics("all", counts(predictions))
    metrics["f1"] = round(mean(metrics[f"{s}_f1"] for s in sorted(by_split)), 6)
    metrics["accuracy"] = round(mean(metrics[f"{s}_accuracy"] for s in sorted(by_split)), 6)
    return metrics


TASK = Task(
    name="pope",
    version=1,
    folder="pope",
    description="POPE object hallucination (adversarial, popular, random), yes/no",
    load=load,
    variants={
        "llava": Variant(prompt_llava, label_match(yes_no_negation), max_new_tokens=128, image_mode="pad"),
        # lmms-eval's headline pope_f1_score pools all 9000 questions
        "lmms-eval": Variant(
            prompt_lmms,
            label_match(yes_no_exact),
            max_new_tokens=128,
            primary="all_f1",
            departures=(
                "yes_ratio is the share of predicted yes; lmms-eval's counts the ground truth's yes",
            ),
        ),
        # VLMEvalKit f84d7c5e: one F1 pooled over the three splits, an Unknown reply counted as "no"
        "vlmevalkit": Variant(
            primary="all_f1",
            aggregate=partial(aggregate, unparsed_as="no"),
            departures=(
                "the question is asked as POPE's own files word it (VLMEvalKit's TSV text unverified)",
            ),
            unit=Unit(within=("category",), vectorised=partial(twin, unparsed_as="no")),
        ),
    },
    aggregate=aggregate,
    primary="f1",
    kind="yes_no",
    external_id=from_llava_id,
    unit=Unit(within=("category",), vectorised=twin),  # questions, drawn within each split (3000 each)
)
