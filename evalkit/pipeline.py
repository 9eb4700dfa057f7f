"""Generation plumbing: length-sorted batches, images decoded and the next batch prepared in worker
threads while the current batch generates, so the accelerator does not wait on PIL or tokenising."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from PIL import Image

from evalkit.backends.base import Backend, Failure, Request
from evalkit.data.images import ImageError, expand_to_square, load_image
from evalkit.data.readers import Sample
from evalkit.task import Variant

Outcome = str | Failure


def make_batches(samples: list[Sample], variant: Variant, size: int) -> list[list[Sample]]:
    """Batches of similar prompt length (little padding); a stable sort, so the order is deterministic."""
    ordered = sorted(samples, key=lambda s: (len(s.images), len(variant.prompt(s))))
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


def load_images(sample: Sample, mode: str, pad: tuple[int, int, int]) -> list[Image.Image] | Failure:
    """The sample's images in the protocol's image mode, or the reason they cannot be read."""
    try:
        if sample.error:
            raise ImageError(sample.error)
        images = [load_image(ref) for ref in sample.images]
    except ImageError as exc:
        return Failure(str(exc))
    return [expand_to_square(img, pad) for img in images] if mode == "pad" else images


@dataclass
class _Prepared:
    samples: list[Sample]
    prompts: dict[str, str]
    failures: dict[str, Failure]
    requests: list[Request]
    backend_input: Any


class Pipeline:
    """Runs batches through a backend, preparing batch i+1 while batch i generates."""

    def __init__(
        self, backend: Backend, variant: Variant, template: str | None, image_workers: int = 4
    ) -> None:
        self.backend = backend
        self.variant = variant
        self.template = template
        self.mode = backend.image_mode(variant.image_mode)
        self._images = ThreadPoolExecutor(max_workers=image_workers, thread_name_prefix="evalkit-images")
        self._ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evalkit-prepare")

    def _prepare(self, samples: list[Sample]) -> _Prepared:
        prompts = {s.id: self.variant.prompt(s) for s in samples}
        pad = self.backend.pad_colour
        loaded = list(self._images.map(lambda s: load_images(s, self.mode, pad), samples))
        failures = {s.id: r for s, r in zip(samples, loaded, strict=True) if isinstance(r, Failure)}
        requests = [
            Request(s.id, r, prompts[s.id], self.variant.max_new_tokens, self.template)
            for s, r in zip(samples, loaded, strict=True)
            if not isinstance(r, Failure)
        ]
        backend_input = self.backend.prepare(requests) if requests else None
        return _Prepared(samples, prompts, failures, requests, backend_input)

    def run(self, batches: list[list[Sample]]) -> Iterator[list[tuple[Sample, str, Outcome]]]:
        """For each batch, (sample, prompt, output text or failure) in the batch's order."""
        try:
            future: Future[_Prepared] | None = (
                self._ahead.submit(self._prepare, batches[0]) if batches else None
            )
            for i in range(len(batches)):
                assert future is not None
                batch = future.result()
                future = self._ahead.submit(self._prepare, batches[i + 1]) if i + 1 < len(batches) else None
                outputs = self.backend.generate(batch.backend_input) if batch.requests else []
                if len(outputs) != len(batch.requests):
                    raise RuntimeError(
                        f"backend returned {len(outputs)} outputs for {len(batch.requests)} requests"
                    )
                outcomes: dict[str, Outcome] = dict(batch.failures)
                outcomes.update((r.id, o) for r, o in zip(batch.requests, outputs, strict=True))
                yield [(s, batch.prompts[s.id], outcomes[s.id]) for s in batch.samples]
        finally:
            self._ahead.shutdown(wait=True, cancel_futures=True)
            self._images.shutdown(wait=True, cancel_futures=True)
