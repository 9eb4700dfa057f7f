"""Runner overhead and batch scaling on the tiny LLaVA, plus scorer speed. Prints ratios from one run.

1. The limit: a bare `generate` loop over batches pre-processed before timing starts ("generate only").
2. The loop a user writes: per batch, images read, `processor(...)`, `model.generate`, replies decoded, one
   step after another ("user loop", `_common.user_loop`).
3. The runner (`run_task`: images read from disk, templating, LLaVA's tokenization, scoring, records and
   metrics written, the confidence intervals) on the same samples in the same batches.
4. Runner samples/s at batch sizes 1, 16, 64 relative to batch size 1 (batch size 1 runs an eighth of the
   samples, at least 32).
5. Scoring: POPE and MME aggregation over 200k synthetic records.

Each figure is the best of `--rounds` rounds, the three loops taking turns within a round (this machine's
noise only ever slows a loop down). Two settings:
- torch's default threads (every physical core, unless OMP_NUM_THREADS says otherwise): where they take
  every core, the model's matmuls occupy the cores a preparing worker would use, so the runner prepares in
  turn.
- one torch thread, the other cores free (with two cores or more, when the default is more than one): what
  a GPU box looks like to the runner (one core drives the accelerator, the rest are idle), where preparing
  ahead costs generation nothing.

Usage: python bench/runner_overhead.py [--samples 1024] [--new-tokens 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import bare_loop, prepare_batches, runner, user_loop, with_tokens

from evalkit.backends.hf import HFBackend
from evalkit.demo.tiny_model import COLOURS, build_tiny_llava, colour_image
from evalkit.pipeline import usable_cores
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


def best(rounds: int, loops: dict[str, Callable[[int], float]]) -> dict[str, float]:
    """Each loop's best samples/s over `rounds` rounds, the loops taking turns within a round (the argument
    is the round, for output folders that must be new)."""
    rates: dict[str, list[float]] = {name: [] for name in loops}
    for r in range(rounds):
        for name, loop in loops.items():
            gc.collect()  # no loop pays for another's garbage
            rates[name].append(loop(r))
    return {name: max(values) for name, values in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=1024)
    parser.add_argument("--new-tokens", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    cores = usable_cores()
    settings = [torch.get_num_threads()]  # the default: every physical core, unless OMP_NUM_THREADS says
    if cores >= 2 and settings[0] > 1:
        settings.append(1)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        backend = HFBackend(build_tiny_llava(tmp / "model"))
        data = {n: tmp / f"data{n}" for n in {args.samples, max(32, args.samples // 8)}}
        for n, folder in data.items():
            write_pope(folder, n)
        task = with_tokens(get_task("pope"), "llava", args.new_tokens)
        runner(backend, task, data[args.samples], 8, tmp / "warmup")  # warm-up (allocator, first-call costs)
        print(
            f"tiny LLaVA, {args.samples} POPE samples ({max(32, args.samples // 8)} at batch size 1), "
            f"{args.new_tokens} new tokens, {cores} cores, best of {args.rounds} rounds"
        )
        for threads in settings:
            torch.set_num_threads(threads)
            print(f"\nmodel on {threads} torch thread(s), {max(0, cores - threads)} core(s) free")
            print("batch  generate-only/s  user loop/s  runner/s  runner/generate-only  runner/user  vs bs1")
            base = None
            for size in (1, 16, 64):
                root = data[args.samples if size > 1 else max(32, args.samples // 8)]
                batches = prepare_batches(backend, task, root, size)
                got = best(
                    args.rounds,
                    {
                        "bare": lambda r, b=batches: bare_loop(backend, b),
                        "user": lambda r, n=size, d=root: user_loop(backend, task, d, n),
                        "runner": lambda r, n=size, d=root, t=threads: runner(
                            backend, task, d, n, tmp / f"t{t}r{r}"
                        ),
                    },
                )
                bare, user, ours = got["bare"], got["user"], got["runner"]
                base = base or ours
                print(
                    f"{size:>5}  {bare:>15.1f}  {user:>11.1f}  {ours:>8.1f}  {ours / bare:>20.2f}  "
                    f"{ours / user:>11.2f}  {ours / base:>6.2f}"
                )
    pope_rate, mme_rate = scorer_speed(200_000)
    print(f"\nscoring 200k records: POPE {pope_rate:,.0f} records/s, MME {mme_rate:,.0f} records/s")


if __name__ == "__main__":
    main()
