"""VQAv2-scale scoring speed: 214,354 synthetic questions (VQAv2 val's size) scored with the vqav2_val task's
llava scorer (the official evaluation) and aggregated, as the runner and `evalkit score` do it.

Answers come from a vocabulary with number words, articles, punctuation, capitalisation and contractions;
about half the questions have 10 identical answers (compared raw by the official code). Prints seconds and
questions/s for: scoring alone, scoring into prediction records (`make_prediction`), and the aggregate.

Usage: python bench/vqa_scoring.py [--questions 214354] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evalkit.data.readers import Sample
from evalkit.protocols import get_protocol
from evalkit.registry import get_task
from evalkit.runner import make_prediction

NOUNS = (
    "dog cat man woman frisbee tennis pizza giraffe bus train kite umbrella surfboard skateboard table "
    "clock bench horse elephant laptop phone shirt hat tree sky grass water road car truck"
).split()
COLOURS = "red blue green white black yellow brown gray orange pink".split()
NUMBERS = ("0 1 2 3 4 5 6 7 8 9 10 12 20 100 zero one two three four five six seven eight nine ten "
           "1,000 3.5 2:30 10:00").split()  # fmt: skip
PHRASES = ["yes", "no", "dont know", "don't know", "cant tell", "man's", "t-shirt", "black and white",
           "on table", "in the sky", "it's a cat", "nothing", "left", "right", "night"]  # fmt: skip


def vocabulary() -> list[str]:
    """About 650 distinct answers in the forms VQAv2 annotators type (variants multiply them)."""
    base = NUMBERS + PHRASES + COLOURS + NOUNS
    base += [f"{c} {n}" for c in COLOURS for n in NOUNS]
    base += [f"{a} {n}" for a in ("a", "an", "the") for n in NOUNS]
    base += [f"{n} {m}" for n in NUMBERS[:14] for m in NOUNS[:12]]
    return sorted(set(base))


def variant(answer: str, rng: random.Random) -> str:
    """The same answer as another annotator (or a model) might write it."""
    roll = rng.random()
    if roll < 0.2:
        return answer.capitalize()
    if roll < 0.3:
        return answer + rng.choice((".", "!", "?", " "))
    if roll < 0.4:
        return "the " + answer
    if roll < 0.5:
        return answer.replace("'", "")
    return answer


def synthetic(n: int, seed: int) -> tuple[list[Sample], list[str]]:
    rng = random.Random(seed)
    vocab = vocabulary()
    kinds = ("yes/no", "number", "other")
    samples, outputs = [], []
    for k in range(n):
        # a long tail: about a third of the questions have an answer seen nowhere else (real VQAv2 has tens
        # of thousands of distinct answers), so the normalisers' caches do not make the figures flattering
        modal = rng.choice(vocab) if rng.random() < 0.65 else f"{rng.choice(NOUNS)} number {k}"
        if rng.random() < 0.5:
            answers = [modal] * 10
        else:
            agree = rng.randint(2, 9)
            answers = [variant(modal, rng) for _ in range(agree)] + [
                rng.choice(vocab) for _ in range(10 - agree)
            ]
            rng.shuffle(answers)
        meta = {"answers": answers, "answer_type": kinds[k % 3], "question_type": "what", "image_id": k}
        samples.append(Sample(str(k), (), "What is it?", modal, meta))
        roll = rng.random()
        outputs.append(variant(modal, rng) if roll < 0.6 else "" if roll < 0.62 else rng.choice(vocab))
    return samples, outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=214_354)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    task, protocol = get_task("vqav2_val"), get_protocol("llava")
    variant_ = task.variant(protocol.name)
    clock = time.perf_counter()
    samples, outputs = synthetic(args.questions, args.seed)
    identical = sum(len(set(s.meta["answers"])) == 1 for s in samples)
    print(f"built {len(samples):,} questions ({identical / len(samples):.0%} with 10 identical answers) "
          f"in {time.perf_counter() - clock:.1f} s")  # fmt: skip

    def timed(label: str, work: object) -> object:
        start = time.perf_counter()
        result = work()  # type: ignore[operator]
        seconds = time.perf_counter() - start
        print(f"{label:<38} {seconds:6.2f} s  {len(samples) / seconds:>10,.0f} questions/s")
        return result

    timed(
        "score (llava: vqa_submission)",
        lambda: [variant_.score(o, s) for o, s in zip(outputs, samples, strict=True)],
    )
    records = timed(
        "score into records (make_prediction)",
        lambda: [
            make_prediction(task, variant_, protocol, s, "What is it?", o)
            for o, s in zip(outputs, samples, strict=True)
        ],
    )
    metrics = timed("aggregate", lambda: task.aggregate(records))  # type: ignore[arg-type]
    print("metrics:", metrics)


if __name__ == "__main__":
    main()
