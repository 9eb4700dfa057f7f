"""Runner overhead and batch scaling on the tiny LLaVA, plus scorer speed. Prints ratios from one run.

1. The limit: a bare `model.generate` loop over batches pre-processed before timing starts.
2. The runner (`run_task`, reading images from disk, templating, scoring, writing records) on the same
   samples at the same batch size: its samples/s as a fraction of the bare loop's.
3. Runner samples/s at batch sizes 1, 8, 32, 64 relative to batch size 1.
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

from evalkit.backends.base import Request
from evalkit.backends.hf import HFBackend
from evalkit.data.images import expand_to_square, load_image
from evalkit.demo.tiny_model import COLOURS, build_tiny_llava, colour_image
from evalkit.pipeline import LazyBackend
from evalkit.protocols import get_protocol
from evalkit.records import Prediction
from evalkit.registry import get_task
from evalkit.runner import RunSettings, run_task
from evalkit.task import Task, Variant


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


def with_tokens(task: Task, protocol: str, tokens: int) -> Task:
    v = task.variant(protocol)
    variant = Variant(v.prompt, v.score, max_new_tokens=tokens, image_mode=v.image_mode)
    return Task(**{**task.__dict__, "variants": {protocol: variant}})


def bare_loop(backend: HFBackend, task: Task, root: Path, size: int) -> float:
    """samples/s of generate alone, inputs prepared before the clock starts."""
    variant = task.variant("llava")
    samples = task.load(root / task.folder).samples
    batches = []
    for i in range(0, len(samples), size):
        chunk = samples[i : i + size]
        requests = [
            Request(
                s.id,
                [expand_to_square(load_image(s.images[0]), backend.pad_colour)],
                variant.prompt(s),
                variant.max_new_tokens,
                "vicuna_v1",
            )
            for s in chunk
        ]
        batches.append(backend.prepare(requests))
    start = time.perf_counter()
    for prepared in batches:
        backend.generate(prepared)
    return len(samples) / (time.perf_counter() - start)


def runner(backend: HFBackend, task: Task, root: Path, size: int, out: Path) -> float:
    settings = RunSettings(
        name=f"bs{size}", model="tiny", protocol=get_protocol("llava"), data_root=root, output=out
    )
    start = time.perf_counter()
    record = run_task(task, settings, LazyBackend(lambda: backend, batch_size=size))
    return record.n / (time.perf_counter() - start)


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
        print("batch  bare generate/s  runner/s  runner/bare  runner vs bs1")
        base = None
        for size in (1, 8, 32, 64):
            bare = bare_loop(backend, task, tmp / "data", size)
            ours = runner(backend, task, tmp / "data", size, tmp / "out")
            base = base or ours
            print(f"{size:>5}  {bare:>15.1f}  {ours:>8.1f}  {ours / bare:>11.2f}  {ours / base:>13.2f}")
    pope_rate, mme_rate = scorer_speed(200_000)
    print(f"scoring 200k records: POPE {pope_rate:,.0f} records/s, MME {mme_rate:,.0f} records/s")


if __name__ == "__main__":
    main()
