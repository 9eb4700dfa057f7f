"""The backend contract: one required method, `generate(batch) -> texts or failures`.

A backend knows nothing of tasks. It receives decoded RGB images (already put in the protocol's image
mode), the task prompt, the protocol's conversation template (None: the model's own chat template)
and the generation limit. `prepare` runs in a worker thread ahead of `generate`, so CPU-side work
(tokenising, pixel preprocessing, base64) overlaps with the accelerator.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, ClassVar

from PIL import Image

CLIP_MEAN_RGB = (122, 116, 104)  # LLaVA's pad colour: int(255 * CLIP image_mean)


@dataclass
class Request:
    id: str
    images: list[Image.Image]
    prompt: str
    max_new_tokens: int
    template: str | None = None
    tokenization: str = "processor"  # or "llava": chunks around each image tokenized apart (the protocol's)


@dataclass(frozen=True)
class Failure:
    """A request that could not be answered; the reason becomes the prediction's `error`."""

    reason: str


@dataclass
class Backend:
    """Base class with the defaulted hooks; subclasses implement `generate`."""

    name: str = "backend"
    default_batch_size: int = 8
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def pad_colour(self) -> tuple[int, int, int]:
        """Background for the `pad` image mode."""
        return CLIP_MEAN_RGB

    def image_mode(self, requested: str) -> str:
        """The image mode actually applied for a protocol's request (a backend may know better)."""
        return requested

    # True: `prepare` may run in a forked worker process (no GIL shared with `generate`); its result must
    # then be plain data (tensors, numbers, strings) and it must not change the backend's state.
    prepare_in_process: ClassVar[bool] = False

    @property
    def generates_on_cpu(self) -> bool:
        """Whether `generate` runs the model on this machine's CPU, whose every core its math then takes."""
        return False

    def prepare(self, batch: list[Request]) -> Any:
        """CPU-side preparation run ahead of `generate` in a worker thread or process (default: nothing)."""
        return batch

    def generate(self, prepared: Any) -> list[str | Failure]:
        """Greedy completions, one per request of the prepared batch, in order."""
        raise NotImplementedError

    # A backend that serves requests concurrently (remote endpoints) sets `window` to how many requests
    # it wants in flight and implements `submit`; the runner then keeps that many going and writes
    # results as they complete instead of waiting for whole batches.
    window: int = 0

    def submit(self, prepared: Any) -> list[Future[str | Failure]]:
        """Start the prepared batch's requests; one future per request, in order."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """What goes into metrics.json `model_config` (never secrets)."""
        return {"backend": self.name, **self.info}

    def close(self) -> None:
        """Release resources (default: nothing)."""
