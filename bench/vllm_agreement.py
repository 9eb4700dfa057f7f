"""How far vLLM's generations agree with transformers' on the same model, inputs and protocol (a GPU box).

Runs the same tasks twice through `evalkit run`, once on the hf backend and once on the vllm backend (each
in its own process, so the first model's GPU memory is free before the second loads), then compares the
two runs sample by sample with `evalkit compare`'s numbers: replies identical, scores identical, the mean
scores and a paired test. Both backends get identical inputs (text, LLaVA token ids, padded images, stop
ids; tests/backends/test_vllm_requests.py); what differs is kernels and batching, so agreement is measured
here, not assumed. Resumable like `evalkit run`: run it again to finish or to print the numbers again.

Usage (defaults: the LLaVA-1.5-7B configs, which share one checkpoint):
    pip install 'evalkit[vllm]'
    python bench/vllm_agreement.py --tasks pope,mme --data-root $EVALKIT_DATA --output results-agreement
    python bench/vllm_agreement.py --hf-model llava-v1.5-7b-hf --vllm-model vllm:llava-hf/llava-1.5-7b-hf \\
        --tasks pope --limit 500 --tensor-parallel-size 2
Writes <output>/agreement.json beside the two runs (<output>/hf, <output>/vllm).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hf-model", default="llava-v1.5-7b", help="--model for the hf backend run")
    parser.add_argument("--vllm-model", default="llava-v1.5-7b-vllm", help="--model for the vllm run")
    parser.add_argument("--tasks", default="pope,mme", help="comma-separated tasks (evalkit list tasks)")
    parser.add_argument("--protocol", default="llava")
    parser.add_argument("--data-root", type=Path, default=None, help="default $EVALKIT_DATA")
    parser.add_argument("--output", type=Path, default=Path("results-agreement"))
    parser.add_argument("--limit", type=int, default=None, help="first N samples of each task")
    parser.add_argument("--dtype", default="float16", help="the same dtype for both (default float16)")
    parser.add_argument("--batch-size", default="16", help="hf backend batch size (vllm schedules its own)")
    parser.add_argument("--tensor-parallel-size", type=int, default=1, help="GPUs for the vllm run")
    return parser.parse_args(argv)


def run(label: str, model: str, args: argparse.Namespace, extra: list[str]) -> float:
    """One `evalkit run` into <output>/<label>; its wall time in seconds."""
    command = [sys.executable, "-m", "evalkit.cli", "run", "--model", model, "--tasks", args.tasks]
    command += ["--protocol", args.protocol, "--output", str(args.output), "--name", label]
    command += ["--dtype", args.dtype, *extra]
    if args.data_root:
        command += ["--data-root", str(args.data_root)]
    if args.limit:
        command += ["--limit", str(args.limit)]
    print("$", " ".join(command), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    seconds = {
        "hf": run("hf", args.hf_model, args, ["--batch-size", args.batch_size]),
        "vllm": run(
            "vllm", args.vllm_model, args, ["--tensor-parallel-size", str(args.tensor_parallel_size)]
        ),
    }
    from evalkit.errors import InputError
    from evalkit.reports.compare import compare_runs  # no vllm needed to compare

    rows = []
    print(f"\n{'task':<18}{'paired':>8}{'same reply':>12}{'same score':>12}{'hf':>9}{'vllm':>9}  test")
    for task in [t.strip() for t in args.tasks.split(",") if t.strip()]:
        try:
            c = compare_runs(args.output / "hf" / task, args.output / "vllm" / task)
        except InputError as exc:  # no sample scored in both runs (all failed, say): nothing to compare
            rows.append({"task": task, "paired": 0, "error": str(exc)})
            print(f"{task:<18}{0:>8}  nothing to compare: {exc}")
            continue
        rows.append({"task": c.task, **{k: v for k, v in vars(c).items() if k != "task"}})
        if not c.paired:  # guards the shares below
            print(f"{c.task:<18}{0:>8}  no sample scored in both runs")
            continue
        reply, score = 100 * c.same_reply / c.paired, 100 * c.same_score / c.paired
        print(
            f"{c.task:<18}{c.paired:>8}{reply:>11.1f}%{score:>11.1f}%{c.mean_a:>9.4g}{c.mean_b:>9.4g}"
            f"  {c.test}, p = {c.p_value:.3g}"
        )
    print(f"wall time: hf {seconds['hf']:.0f} s, vllm {seconds['vllm']:.0f} s (loading included)")
    summary = {
        "hf_model": args.hf_model,
        "vllm_model": args.vllm_model,
        "protocol": args.protocol,
        "dtype": args.dtype,
        "tensor_parallel_size": args.tensor_parallel_size,
        "limit": args.limit,
        "seconds": seconds,
        "tasks": rows,
    }
    (args.output / "agreement.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output / 'agreement.json'}")


if __name__ == "__main__":
    main()
