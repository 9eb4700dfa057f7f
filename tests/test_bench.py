"""The bench scripts: gpu_throughput.py runs its whole path on the CPU (--tiny) and builds LLaVA-1.5-7B's
exact shapes; `--batch-size auto` halves on CUDA out-of-memory through the real runner and hf backend;
`make bench` runs every bench script."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from evalkit.backends.hf import HFBackend
from evalkit.demo.tiny_model import build_tiny_llava
from evalkit.pipeline import LazyBackend
from evalkit.protocols import get_protocol
from evalkit.registry import get_task
from evalkit.runner import RunSettings, run_task

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import gpu_throughput  # noqa: E402  (bench/ is not a package)
from _common import with_tokens  # noqa: E402


def test_gpu_throughput_tiny_runs_the_whole_path() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_throughput.py"), "--tiny"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for pattern in (
        r"^model: [\d,]+ parameters \(vision ",
        r"^workload: MME authors' layout, 48 questions on 24 images",
        r"^matmul: [\d.e+-]+ TFLOP/s measured",
        r"^batch size auto: started at 16, settled at 16 after 0 halving",
        r"^runner, --batch-size auto \(start 16\) +[\d.]+ +[\d.]+ +-$",
        r"^bare generate loop, batch 16 +[\d.]+",
        r"^runner, batch 16 +[\d.]+",
        r"^runner, batch 1 \(16 samples\) +[\d.]+",
        r"^ratios: runner/bare [\d.]+, runner/bs1 [\d.]+, auto/fixed runner [\d.]+$",
        r"^prefill bound: .* TFLOP/sample \(T=\d+\.\d prompt tokens, n=4\): [\d.e+]+ samples/s",
    ):
        assert re.search(pattern, out, re.MULTILINE), f"no line matching {pattern!r} in:\n{out}"


def test_the_default_shape_is_llava_1_5_7b() -> None:
    """Built on the meta device (no memory): llava-hf/llava-1.5-7b-hf's 7,063,427,072 parameters; the
    tokenizer puts <image> at 32000 and <pad> at 32001 under the 32064-row embedding."""
    from transformers import LlavaForConditionalGeneration

    with torch.device("meta"):
        model = LlavaForConditionalGeneration(gpu_throughput.llava_config(gpu_throughput.LLAVA_7B))
    counts = gpu_throughput.parameter_counts(model)
    assert sum(counts.values()) == 7_063_427_072
    assert counts["vision"] == 303_507_456 and counts["projector"] == 20_979_712
    assert model.config.text_config.vocab_size == 32064 and gpu_throughput.LLAVA_7B.image_tokens == 576
    tokenizer = gpu_throughput.build_tokenizer(gpu_throughput.corpus(gpu_throughput.mme_items()[:50]))
    assert tokenizer.convert_tokens_to_ids(["<unk>", "<s>", "</s>", "<image>", "<pad>"]) == [
        0,
        1,
        2,
        32000,
        32001,
    ]
    assert len(tokenizer) == 32002


def test_the_workload_has_mme_counts() -> None:
    items = gpu_throughput.mme_items()
    assert len(items) == 1187 and sum(len(i.questions) for i in items) == 2374
    assert {i.subtask for i in items} == set(gpu_throughput.SUBTASKS)
    assert all(q.endswith(" Please answer yes or no.") for i in items for q in i.questions)
    assert len(gpu_throughput.spread(items, 100)) == 50


class OutOfMemoryAbove(HFBackend):
    """The real hf backend on a device with room for `rows` rows: a larger part raises `error` as CUDA's
    allocator would, before any work. Records the rows of every part it was asked to generate."""

    rows = 4
    error: BaseException = torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.parts: list[int] = []

    def _generate_rows(self, inputs: dict[str, Any], max_new_tokens: int, stops: frozenset[int]) -> list[str]:
        self.parts.append(int(inputs["input_ids"].shape[0]))
        if self.parts[-1] > self.rows:
            raise type(self.error)(*self.error.args)
        return super()._generate_rows(inputs, max_new_tokens, stops)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llava(tmp_path_factory.mktemp("tiny") / "tiny-llava", seed=0)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    gpu_throughput.write_mme(root, gpu_throughput.spread(gpu_throughput.mme_items(), 32))
    return root


def outputs(backend: HFBackend, size: int, data_root: Path, out: Path) -> dict[str, str]:
    settings = RunSettings(
        name="run", model="tiny", protocol=get_protocol("llava"), data_root=data_root, output=out
    )
    task = with_tokens(get_task("mme"), "llava", 4)
    run_task(task, settings, LazyBackend(lambda: backend, batch_size=size))
    lines = (out / "run" / "mme" / "predictions.jsonl").read_text().splitlines()
    return {r["id"]: r["output"] for r in map(json.loads, lines)}


@pytest.mark.parametrize(
    "error",
    [
        torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        RuntimeError("CUDA error: out of memory"),  # raised outside the caching allocator
    ],
    ids=["OutOfMemoryError", "RuntimeError"],
)
def test_auto_batch_size_halves_on_cuda_out_of_memory(
    checkpoint: Path, data_root: Path, tmp_path: Path, error: BaseException
) -> None:
    """A batch of 16 on room for 5 rows: 16 and 8 fail, 4 fits and is kept for the next batches; every sample
    is answered, as at batch size 1."""
    backend = OutOfMemoryAbove(checkpoint, dtype="float32", device="cpu")
    backend.rows, backend.error = 5, error
    halved = outputs(backend, 16, data_root, tmp_path / "auto")
    assert backend.max_rows == 4
    assert backend.parts == [16, 8] + [4] * 8  # 32 questions: two batches of 16, each in four parts of 4
    assert halved == outputs(
        HFBackend(checkpoint, dtype="float32", device="cpu"), 1, data_root, tmp_path / "one"
    )


def test_out_of_memory_at_one_row_and_other_errors_are_raised(
    checkpoint: Path, data_root: Path, tmp_path: Path
) -> None:
    backend = OutOfMemoryAbove(checkpoint, dtype="float32", device="cpu")
    backend.rows = 0
    with pytest.raises(torch.cuda.OutOfMemoryError):
        outputs(backend, 4, data_root, tmp_path / "oom")
    assert backend.parts == [4, 2, 1]
    backend = OutOfMemoryAbove(checkpoint, dtype="float32", device="cpu")
    backend.rows, backend.error = 0, RuntimeError("expected all tensors to be on the same device")
    with pytest.raises(RuntimeError, match="same device"):
        outputs(backend, 4, data_root, tmp_path / "other")
    assert backend.parts == [4] and backend.max_rows is None


def test_make_bench_runs_every_bench_script() -> None:
    """Each bench/*.py has a small-size line in the Makefile's BENCH_SMALL, which `make bench` runs."""
    makefile = (ROOT / "Makefile").read_text()
    small = makefile.split("BENCH_SMALL =", 1)[1].split("\n\n", 1)[0]
    scripts = {p.name for p in (ROOT / "bench").glob("*.py") if not p.name.startswith("_")}
    missing = sorted(s for s in scripts if f'"bench/{s}' not in small)
    assert not missing, f"`make bench` does not run {missing}: give each a small-size line in BENCH_SMALL"
    assert "$(BENCH_SMALL)" in makefile.split("\nbench:", 1)[1]
