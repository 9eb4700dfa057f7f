"""Pieces the bench scripts share: a task with a fixed generation limit, the runner timed end to end, and
the bare `generate` loop over batches prepared before the clock starts (the limit the runner is held to)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evalkit.backends.base import Request
from evalkit.backends.hf import HFBackend
from evalkit.data.images import expand_to_square, load_image
from evalkit.pipeline import LazyBackend, make_batches
from evalkit.protocols import get_protocol
from evalkit.runner import RunSettings, run_task
from evalkit.task import Task


def with_tokens(task: Task, protocol: str, tokens: int) -> Task:
    """`task` with only `protocol`'s variant, generating at most `tokens` new tokens."""
    return replace(task, variants={protocol: replace(task.variant(protocol), max_new_tokens=tokens)})


def requests(
    backend: HFBackend, task: Task, root: Path, size: int, protocol: str = "llava"
) -> Iterator[list[Request]]:
    """The task's samples as the runner batches them (same order, same members), a batch of requests at a
    time: images decoded and in the protocol's image mode; the protocol's prompt, template, tokenization."""
    p = get_protocol(protocol)
    variant = task.variant(protocol)
    mode = backend.image_mode(variant.image_mode or p.image_mode)
    prompt, tokens = variant.prompt, variant.max_new_tokens
    assert prompt is not None and tokens is not None  # Task.variant fills both in
    for chunk in make_batches(task.load(root / task.folder).samples, variant, size):
        batch = []
        for s in chunk:
            images = [load_image(ref) for ref in s.images]
            if mode == "pad":
                images = [expand_to_square(img, backend.pad_colour) for img in images]
            batch.append(Request(s.id, images, prompt(s), tokens, p.template, p.tokenization))
        yield batch


def prepared(backend: HFBackend, task: Task, root: Path, size: int, protocol: str = "llava") -> Iterator[Any]:
    """`requests`, each batch prepared for `generate` (templated and tokenized the protocol's way)."""
    for batch in requests(backend, task, root, size, protocol):
        yield backend.prepare(batch)


def prepare_batches(
    backend: HFBackend, task: Task, root: Path, size: int, protocol: str = "llava"
) -> list[Any]:
    """Every batch of `prepared`, made before any clock starts."""
    return list(prepared(backend, task, root, size, protocol))


def user_loop(backend: HFBackend, task: Task, root: Path, size: int, protocol: str = "llava") -> float:
    """samples/s of the loop a user writes: per batch, the images opened (and padded to a square where the
    protocol does), `processor(text=..., images=...)`, `model.generate`, the replies decoded; one step after
    another. The same prompt texts in the same batches as the runner (only the runner keeps LLaVA's
    chunked tokenization)."""
    model, processor = backend.model, backend.processor
    start, rows = time.perf_counter(), 0
    for batch in requests(backend, task, root, size, protocol):
        images = [list(r.images) for r in batch]
        texts = [backend.render(r) for r in batch]
        inputs = processor(text=texts, images=images, padding=True, return_tensors="pt").to(backend.device)
        with torch.inference_mode():
            out = model.generate(
                **inputs, do_sample=False, max_new_tokens=max(r.max_new_tokens for r in batch),
                pad_token_id=backend.pad_id, eos_token_id=sorted(backend.stop_ids),
            )  # fmt: skip
        processor.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        rows += len(batch)
    return rows / (time.perf_counter() - start)


def bare_loop(backend: HFBackend, batches: list[Any]) -> float:
    """samples/s of `generate` alone over prepared batches."""
    rows = sum(int(b[0]["input_ids"].shape[0]) for b in batches)
    start = time.perf_counter()
    for prepared in batches:
        backend.generate(prepared)
    return rows / (time.perf_counter() - start)


def runner(
    backend: HFBackend,
    task: Task,
    root: Path,
    size: int,
    out: Path,
    protocol: str = "llava",
    name: str | None = None,
) -> float:
    """samples/s of `run_task` (images read from disk, templating, scoring, records written) at batch `size`.
    Results go to `out/<name>` (default `bs<size>`), which must not hold an earlier run: that would resume."""
    settings = RunSettings(
        name=name or f"bs{size}", model="bench", protocol=get_protocol(protocol), data_root=root, output=out
    )
    start = time.perf_counter()
    record = run_task(task, settings, LazyBackend(lambda: backend, batch_size=size))
    return record.n / (time.perf_counter() - start)
