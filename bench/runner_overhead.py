"""Runner overhead and batch scaling on the tiny LLaVA, plus scorer speed. Prints ratios from one run.

1. The limit: a bare `generate` loop over batches pre-processed before timing starts ("generate only").
2. The loop a user writes: each batch read, processed, then generated in turn ("inline").
3. The runner (`run_task`: images read from disk, templating, scoring, records and metrics written, the
   confidence intervals) on the same samples in the same batches: its samples/s against both loops.
4. Runner samples/s at batch sizes 1, 16, 64 relative to batch size 1.
4. Scoring: POPE and MME aggregation over 200k synthetic records.

Usage: python bench/runner_overhead.py [--samples 256] [--new-tokens 8]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import bare_loop, inline_loop, prepare_batches, runner, with_tokens

from evalkit.backends.hf import HFBackend
from evalkit.demo.tiny_model import COLOURS, build_tiny_llava, colour_image
from evalkit.records import Prediction
from evalkit.registry import get_task


def write_pope(root: Path, n: int) -> None:
    names = sorted(COLOURS)
    (root / "coco" / "val2014").mkdir(parents=True)
    (root / "pope").mkdir()
    rows = []
    for i in range(1, n + 1):
        colour, asked = names[i % 4], names[(i * 7) % 4]
        image = f"COCO_val2014_{i:012d}.jpg"
        colour_image(colour, seed=i, size=48).save(root / "coco" / "val2014" / image)
        rows.append(
            {
                "question_id": i,
                "image": image,
                "text": f"Is the image {asked}?" + " really" * (i % 5),
                "label": "yes" if colour == asked else "no",
            }
        )
    for k, split in enumerate(("adversarial", "popular", "random")):  # the task reads all three splits
        lines = "".join(json.dumps(r) + "\n" for r in rows[k::3])
        (root / "pope" / f"coco_pope_{split}.json").write_text(lines)


def scorer_speed(n: int) -> tuple[float, float]:
    rng = random.Random(0)
    pope = [
        Prediction(
            id=f"{s}/{i}",
            prompt="",
            output="",
            answer=rng.choice(["yes", "no", None]),
            score=1.0,
            parse="x",
            meta={"category": s, "target": rng.choice(["yes", "no"])},
        )
        for i in range(n // 3)
        for s in ("adversarial", "popular", "random")
    ]
    mme = [
        Prediction(
            id=f"{i}#{k}",
            prompt="",
            output="",
            answer="yes",
            score=float(rng.random() < 0.7),
            parse="x",
            meta={"category": ["existence", "OCR", "code_reasoning"][i % 3], "image_id": str(i)},
        )
        for i in range(n // 2)
        for k in (0, 1)
    ]
    out = []
    for task, preds in ((get_task("pope"), pope), (get_task("mme"), mme)):
        start = time.perf_counter()
        task.aggregate(preds)
        out.append(len(preds) / (time.perf_counter() - start))
    return out[0], out[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--new-tokens", type=int, default=8)
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        backend = HFBackend(build_tiny_llava(tmp / "model"))
        write_pope(tmp / "data", args.samples)
        task = with_tokens(get_task("pope"), "llava", args.new_tokens)
        runner(backend, task, tmp / "data", 8, tmp / "warmup")  # warm-up (allocator, first-call costs)
        print(
            f"tiny LLaVA, {args.samples} POPE samples, {args.new_tokens} new tokens, "
            f"torch threads {torch.get_num_threads()}"
        )
        print("batch  generate only/s  inline/s  runner/s  runner/generate-only  runner/inline  vs bs1")
        base = None
        for size in (1, 16, 64):
            bare = bare_loop(backend, prepare_batches(backend, task, tmp / "data", size))
            inline = inline_loop(backend, task, tmp / "data", size)
            ours = runner(backend, task, tmp / "data", size, tmp / "out")
            base = base or ours
            print(
                f"{size:>5}  {bare:>15.1f}  {inline:>8.1f}  {ours:>8.1f}  {ours / bare:>20.2f}  "
                f"{ours / inline:>13.2f}  {ours / base:>6.2f}"
            )
    pope_rate, mme_rate = scorer_speed(200_000)
    print(f"scoring 200k records: POPE {pope_rate:,.0f} records/s, MME {mme_rate:,.0f} records/s")


if __name__ == "__main__":
    main()
