"""Peak memory (RSS) and time of loading VQAv2 val, the largest annotation file evalkit reads: the streaming
reader (`vqav2_val`'s loader) against the former whole-document json.load of both files, plus the peak RSS of
reading, aggregating and bootstrapping (metrics.json's ci95) as many prediction records. Prints figures from
one run.

The fixture is synthetic, in the official layout and at val2014's size by default: 214,354 questions on
~40k images, 10 answers each, answer strings as annotators type them, so that the annotation file is
~165 MB like the real one. Each measurement runs in a child process of its own, so its peak RSS
(ru_maxrss) is its own; "base" is the child's RSS after its imports, before it reads anything. Wall and
CPU seconds are both given: on a shared machine the CPU time is the steadier figure.

Usage: python bench/memory.py [--questions 214354] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evalkit.data.images import ImageRef, file_ref
from evalkit.data.jsonstream import BACKEND
from evalkit.data.readers import LIST, TEXT, Sample, read_json, require_fields
from evalkit.records import read_predictions
from evalkit.registry import get_task
from evalkit.scoring.bootstrap import ci95

QUESTIONS = "v2_OpenEnded_mscoco_val2014_questions.json"
ANNOTATIONS = "v2_mscoco_val2014_annotations.json"
PREDICTIONS = "predictions.jsonl"
SHORT = "\nAnswer the question using a single word or phrase."
NOUNS = (
    "dog cat man woman frisbee tennis pizza giraffe bus train kite umbrella surfboard skateboard table "
    "clock bench horse elephant laptop phone shirt hat tree sky grass water road car truck"
).split()
COLOURS = "red blue green white black yellow brown gray orange pink".split()
NUMBERS = "0 1 2 3 4 5 6 7 8 10 12 20 100 one two three four 1,000 3.5 2:30".split()
# (question_type, question) by answer type, in val2014's proportions: 38% yes/no, 12% number, 50% other
YES_NO = (
    ("is the", "Is the {n} {c}?"),
    ("is there a", "Is there a {n} in the picture?"),
    ("are the", "Are the {n}s next to the {m}?"),
    ("is this a", "Is this a {n} or a {m}?"),
)
NUMBER = (
    ("how many", "How many {n}s are there?"),
    ("how many", "How many {n}s are in the photo?"),
    ("what number is", "What number is on the {n}?"),
)
OTHER = (
    ("what color is the", "What color is the {n}?"),
    ("what is the", "What is the {n} holding?"),
    ("what is on the", "What is on the {n}?"),
    ("where is the", "Where is the {n} sitting?"),
    ("what kind of", "What kind of {n} is this?"),
    ("what is the man", "What is the man doing with the {n}?"),
)


def spelled(answer: str, rng: random.Random) -> str:
    """The answer as one more annotator might type it."""
    roll = rng.random()
    if roll < 0.1:
        return answer.capitalize()
    if roll < 0.15:
        return answer + "."
    return "the " + answer if roll < 0.2 else answer


def item(k: int, rng: random.Random) -> tuple[dict[str, Any], dict[str, Any]]:
    """Question k and its annotation, with the official files' keys in their order."""
    image_id = 1 + k * 40_504 // 214_354 * 7  # ~5.3 questions per image, as in val2014
    qid = image_id * 1000 + k % 1000
    roll, n, m, c = rng.random(), rng.choice(NOUNS), rng.choice(NOUNS), rng.choice(COLOURS)
    if roll < 0.38:
        kind, (qtype, text), pool = "yes/no", rng.choice(YES_NO), ["yes", "no"]
        modal = rng.choice(pool)
    elif roll < 0.5:
        kind, (qtype, text), pool = "number", rng.choice(NUMBER), NUMBERS
        modal = rng.choice(pool)
    else:
        kind, (qtype, text) = "other", rng.choice(OTHER)
        pool = [f"{rng.choice(COLOURS)} {rng.choice(NOUNS)}" for _ in range(3)] + NOUNS
        # a long tail: real val2014 answers hold tens of thousands of distinct strings
        modal = rng.choice(pool) if rng.random() < 0.7 else f"{c} {n} by the {m} {k % 9973}"
    if rng.random() < 0.5:
        answers = [modal] * 10
    else:
        answers = [spelled(modal, rng) for _ in range(rng.randint(3, 9))]
        answers += [rng.choice(pool) for _ in range(10 - len(answers))]
    question = {"image_id": image_id, "question": text.format(n=n, m=m, c=c), "question_id": qid}
    annotation = {
        "question_type": qtype,
        "multiple_choice_answer": modal,
        "answers": [
            {"answer": a, "answer_confidence": "maybe" if (k + i) % 4 == 0 else "yes", "answer_id": i + 1}
            for i, a in enumerate(answers)
        ],
        "image_id": image_id,
        "answer_type": kind,
        "question_id": qid,
    }
    return question, annotation


def record(q: dict[str, Any], a: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The prediction record a vqav2_val run writes for this question (the reply right 60% of the time)."""
    answers = [x["answer"] for x in a["answers"]]
    target = answers[0] if len(set(answers)) == 1 else a["multiple_choice_answer"]
    reply = target if rng.random() < 0.6 else rng.choice(NOUNS)
    meta = {"target": target, "question": q["question"], "image_id": q["image_id"], "answers": answers}
    return {
        "id": str(q["question_id"]),
        "prompt": q["question"] + SHORT,
        "output": reply,
        "answer": reply.lower(),
        "score": float(reply == target),
        "parse": "vqa_submission",
        "meta": meta | {"answer_type": a["answer_type"], "question_type": a["question_type"]},
        "error": None,
    }


def write_fixture(root: Path, n: int, seed: int) -> None:
    """`vqav2/` (questions and annotations, written entry by entry), an empty `coco/val2014/`, and
    `predictions.jsonl`."""
    rng = random.Random(seed)
    folder = root / "vqav2"
    folder.mkdir(parents=True)
    (root / "coco" / "val2014").mkdir(parents=True)
    head = {
        "info": {"description": "This is v2.0 of the VQA dataset.", "url": "http://visualqa.org",
                 "version": "2.0", "year": 2017, "contributor": "VQA Team",
                 "date_created": "2017-04-26 17:07:13"},
        "license": {"url": "http://creativecommons.org/licenses/by/4.0/",
                    "name": "Creative Commons Attribution 4.0 International License"},
        "data_subtype": "val2014",
    }  # fmt: skip
    questions_head = json.dumps(head | {"task_type": "Open-Ended", "data_type": "mscoco"})
    with (
        (folder / QUESTIONS).open("w", encoding="utf-8") as qf,
        (folder / ANNOTATIONS).open("w", encoding="utf-8") as af,
        (root / PREDICTIONS).open("w", encoding="utf-8") as pf,
    ):
        qf.write(questions_head[:-1] + ', "questions": [')
        af.write(json.dumps(head)[:-1] + ', "annotations": [')
        for k in range(n):
            q, a = item(k, rng)
            qf.write((", " if k else "") + json.dumps(q))
            af.write((", " if k else "") + json.dumps(a))
            pf.write(json.dumps(record(q, a, rng)) + "\n")
        qf.write("]}")
        af.write('], "data_type": "mscoco"}')


def json_load_samples(folder: Path) -> list[Sample]:
    """The reader before streaming: json.load of both files, every annotation kept whole until the join,
    then the same samples."""
    annotations = read_json(folder / ANNOTATIONS)["annotations"]
    fields = {"question_id": int, "answers": LIST, "multiple_choice_answer": TEXT, "answer_type": TEXT,
              "question_type": TEXT}  # fmt: skip
    for k, a in enumerate(annotations):
        require_fields(a, f"annotation {k}", fields)
    by_id = {int(a["question_id"]): a for a in annotations}
    images, refs, samples = folder.parent / "coco" / "val2014", dict[int, ImageRef](), []
    for k, q in enumerate(read_json(folder / QUESTIONS)["questions"]):
        require_fields(q, f"question {k}", {"question_id": int, "image_id": int, "question": TEXT})
        a = by_id[int(q["question_id"])]
        if (image_id := int(q["image_id"])) not in refs:
            refs[image_id] = file_ref(images / f"COCO_val2014_{image_id:012d}.jpg")
        answers = [str(x["answer"]) for x in a["answers"]]
        target = answers[0] if len(set(answers)) == 1 else str(a["multiple_choice_answer"])
        meta = {"image_id": image_id, "answers": answers}
        meta |= {"answer_type": a["answer_type"], "question_type": a["question_type"]}
        samples.append(Sample(str(q["question_id"]), (refs[image_id],), q["question"], target, meta))
    return samples


def _rss() -> int:
    """This process's peak RSS so far, KiB (Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(what: str, root: Path) -> None:
    """One measurement in this (fresh) process; prints a JSON line."""
    task, out = get_task("vqav2_val"), {"base": _rss()}
    wall, cpu = time.perf_counter(), time.process_time()
    if what == "streaming":
        kept: list[Any] = task.load(root / "vqav2").samples
    elif what == "json.load":
        kept = json_load_samples(root / "vqav2")
    else:
        kept = read_predictions(root / PREDICTIONS)
        out["read"] = _rss()
        metrics = task.aggregate_for("llava")(kept)
        out["accuracy"], out["aggregated"] = metrics["accuracy"], _rss()
        start = time.perf_counter()
        found = ci95(kept, task.benchmark_for("llava"), task.unit_for("llava"), expected=metrics)
        out["ci_seconds"], out["ci"] = time.perf_counter() - start, found["accuracy"]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(json.dumps(out | {"peak": _rss(), "wall": wall, "cpu": cpu, "n": len(kept)}))


def measure(what: str, root: Path) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", what, "--root", str(root)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{what}: the child process failed\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(root: Path) -> None:
    mib = 1 / 1024
    print(f"{'load':<10} {'peak RSS':>10} {'base':>9} {'peak-base':>10} {'wall s':>7} {'CPU s':>6}")
    rows = {what: measure(what, root) for what in ("streaming", "json.load")}
    for what, r in rows.items():
        above = (r["peak"] - r["base"]) * mib
        print(
            f"{what:<10} {r['peak'] * mib:>6.0f} MiB {r['base'] * mib:>5.0f} MiB {above:>6.0f} MiB "
            f"{r['wall']:>7.2f} {r['cpu']:>6.2f}"
        )
    new, old = rows["streaming"], rows["json.load"]
    above = (old["peak"] - old["base"]) / (new["peak"] - new["base"])
    print(
        f"json.load / streaming: peak RSS x{old['peak'] / new['peak']:.2f} (above base x{above:.2f}), "
        f"wall x{old['wall'] / new['wall']:.2f}, CPU x{old['cpu'] / new['cpu']:.2f}"
    )
    agg = measure("aggregate", root)
    print(
        f"{agg['n']:,} prediction records: peak RSS {agg['read'] * mib:.0f} MiB once read "
        f"(read_predictions), {agg['aggregated'] * mib:.0f} MiB after the vqav2_val aggregate "
        f"(accuracy {agg['accuracy']:.1f}), {agg['peak'] * mib:.0f} MiB after its 95% interval "
        f"([{agg['ci'][0]:.2f}, {agg['ci'][1]:.2f}], 1000 resamples, {agg['ci_seconds']:.1f} s); "
        f"{agg['wall']:.2f} s wall, {agg['cpu']:.2f} s CPU in all"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Peak RSS and time of loading VQAv2 val (vs json.load)")
    parser.add_argument("--questions", type=int, default=214_354)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", choices=("streaming", "json.load", "aggregate"), help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.root)
        return
    with tempfile.TemporaryDirectory() as tmp:
        root, start = Path(tmp), time.perf_counter()
        write_fixture(root, args.questions, args.seed)
        sizes = [(root / "vqav2" / name).stat().st_size / 2**20 for name in (ANNOTATIONS, QUESTIONS)]
        print(
            f"fixture: {args.questions:,} questions; annotations {sizes[0]:.0f} MiB, "
            f"questions {sizes[1]:.0f} MiB, written in {time.perf_counter() - start:.1f} s; "
            f"ijson backend {BACKEND}"
        )
        report(root)


if __name__ == "__main__":
    main()
