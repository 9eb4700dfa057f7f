"""vLLM's offline engine (`pip install 'evalkit[vllm]'`, imported only when a task has work).

What the engine is asked is built here, client-side, with the hf backend's own functions, so that a vllm
run differs from an hf run only in the kernels:

- **Text**: `render_prompt` and `strip_double_bos` of `evalkit.backends.hf` (the protocol's template, or
  the checkpoint's chat template), as the hf backend renders it.
- **Token ids**: under LLaVA's tokenization (protocol `llava`, `vlmevalkit`) the prompt goes as token ids
  (`TokensPrompt`), made by the hf backend's `llava_token_ids` with one image token per image. vLLM
  tokenizes a text prompt in one piece, which would lose the "▁" (29871) a Llama tokenizer puts before
  the "\\n" after each image; given ids, vLLM replaces each image token by the image's run of image
  tokens (its LLaVA processor's prompt update, the same count the HF processor gives: 576 for
  LLaVA-1.5's CLIP-L/336), which is what the hf backend feeds the model. Other protocols send the text
  and vLLM runs the checkpoint's HF processor on it, as the hf backend does.
- **Images**: the pipeline pads to square (protocol mode `pad`) with `pad_colour`, the image processor's
  mean colour as the hf backend takes it; `image_mode` turns `pad` into `native` for anyres models as the
  hf backend does. vLLM's LLaVA processor then runs the checkpoint's HF image processor, which for
  LLaVA-1.5 resizes the shortest edge to 336 and centre-crops 336x336. LLaVA pads to a square instead of
  cropping; a square resized so that its shortest edge is 336 is 336x336 (transformers'
  `get_resize_output_image_size`: the long side is int(336 * side / side) = 336), so the crop removes
  nothing and the pixels are the padded image's, exactly as in the hf backend.
- **Stops and decoding**: temperature 0, `max_tokens` = the request's limit, `stop_token_ids` = the hf
  backend's set (generation-config and tokenizer EOS, the model config's `stop`, the template's stop
  tokens). vLLM's own detokenisation is off; the returned ids are cut at the first stop id and decoded
  with the checkpoint's tokenizer (`reply_text`, the hf backend's), so equal ids give equal replies.

What remains different is numerical (vLLM's attention and GEMM kernels, continuous batching, tensor
parallelism, its `auto` dtype, which runs float32 checkpoints in float16): measured by
`bench/vllm_agreement.py` / `evalkit compare`, not assumed. `tensor_parallel_size` is recorded in
`metrics.json` and not pinned on resume (like the batch size it changes only kernel numerics).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from PIL import Image

from evalkit.backends.base import Backend, Failure, Request
from evalkit.backends.hf import (
    _adds_bos,
    _first_line,
    _missing_package,
    applied_image_mode,
    expands_image_token,
    llava_token_ids,
    processor_pad_colour,
    render_prompt,
    reply_text,
    stop_ids,
    strip_double_bos,
    template_stop_ids,
)
from evalkit.errors import ConfigError

MISSING = "the vllm backend needs the Python package vllm: pip install 'evalkit[vllm]'"
DEFAULT_BATCH = 128  # requests handed to the engine at once (it schedules them itself)


def preflight() -> None:
    """Before anything is resolved or loaded: vllm installed, and not under torchrun (vLLM runs one
    process per model and spreads it over GPUs itself, `--tensor-parallel-size`)."""
    if importlib.util.find_spec("vllm") is None:
        raise ConfigError(MISSING)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError(
            "the vllm backend runs as one process; start it without torchrun and give it GPUs with "
            "--tensor-parallel-size"
        )


@dataclass(frozen=True)
class EngineRequest:
    """One request as the engine gets it."""

    id: str
    prompt: str  # the text the model sees
    prompt_token_ids: list[int] | None  # LLaVA tokenization: one image token per image; None: vLLM tokenizes
    images: list[Image.Image] = field(repr=False)
    max_tokens: int
    stop_token_ids: tuple[int, ...]

    def engine_prompt(self) -> dict[str, Any]:
        """vLLM's TokensPrompt / TextPrompt (typed dicts)."""
        found: dict[str, Any] = (
            {"prompt_token_ids": list(self.prompt_token_ids)}
            if self.prompt_token_ids is not None
            else {"prompt": self.prompt}
        )
        if self.images:
            found["multi_modal_data"] = {"image": list(self.images)}
        return found

    def sampling(self) -> dict[str, Any]:
        """vLLM `SamplingParams` keyword arguments: greedy, the request's limit, the hf backend's stops."""
        return {
            "temperature": 0.0,
            "max_tokens": self.max_tokens,
            "stop_token_ids": list(self.stop_token_ids),
            "skip_special_tokens": True,
            "detokenize": False,  # the ids are decoded with the checkpoint's tokenizer (reply_text)
        }


class RequestBuilder:
    """What the engine is asked for each `Request`, from the checkpoint's processor and configs alone (no
    weights, no vllm): the hf backend's text, token ids, stops, pad colour and image mode."""

    def __init__(
        self,
        processor: Any,
        model_type: str,
        generation_config: Any,
        stop: list[str | int] | None = None,
        checkpoint: str | None = None,
        max_images: int = 1,
    ) -> None:
        self.processor = processor
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.model_type = model_type
        self.checkpoint = checkpoint
        self.max_images = max_images
        self.image_token = getattr(processor, "image_token", "<image>")
        self.image_token_id = self.tokenizer.convert_tokens_to_ids(self.image_token)
        self.adds_bos = _adds_bos(self.tokenizer)
        self.stop_ids = stop_ids(self.tokenizer, generation_config, stop)

    @classmethod
    def from_folder(
        cls,
        folder: str | Path,
        trust_remote_code: bool = False,
        stop: list[str | int] | None = None,
        max_images: int = 1,
    ) -> RequestBuilder:
        """From a local transformers checkpoint folder (its processor, config and generation config)."""
        from transformers import AutoConfig, AutoProcessor, GenerationConfig

        path = Path(folder)
        try:
            processor = AutoProcessor.from_pretrained(path, trust_remote_code=trust_remote_code)
            config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
        except ImportError as exc:
            raise ConfigError(f"{path}: {_missing_package(exc)}") from None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: {_first_line(exc)}") from None
        try:
            generation = GenerationConfig.from_pretrained(path)
        except OSError:  # no generation_config.json: what transformers derives from the model config
            generation = GenerationConfig.from_model_config(config)
        return cls(processor, config.model_type, generation, stop, str(path), max_images)

    @property
    def pad_colour(self) -> tuple[int, int, int]:
        return processor_pad_colour(self.processor)

    def image_mode(self, requested: str) -> str:
        return applied_image_mode(self.model_type, requested)

    def text(self, request: Request) -> str:
        return strip_double_bos(
            self.tokenizer,
            self.adds_bos,
            render_prompt(self.processor, request, self.image_token, self.checkpoint),
        )

    def stops(self, template: str | None) -> tuple[int, ...]:
        return tuple(sorted(self.stop_ids | template_stop_ids(self.tokenizer, template)))

    def build(self, request: Request) -> EngineRequest:
        """Raises ConfigError for a request with more images than the engine was started for: vLLM would
        refuse every such request (each a failed, wrong-scored sample, failing again on resume), so the
        run stops before generating and says what to set."""
        if len(request.images) > self.max_images:
            n = len(request.images)
            raise ConfigError(
                f"sample {request.id!r} has {n} images; the vllm engine takes at most {self.max_images} "
                f"per prompt: set max_images: {n} (or the task's largest count) in the model config"
            )
        text = self.text(request)
        ids = None
        if request.tokenization == "llava" and expands_image_token(self.processor):
            ids = llava_token_ids(
                self.tokenizer, text, self.image_token, self.image_token_id, [1] * len(request.images)
            )
        return EngineRequest(
            request.id, text, ids, list(request.images), request.max_new_tokens, self.stops(request.template)
        )


TOO_LONG = ("longer than the maximum model length", "too long")  # vLLM's messages for an over-long prompt


def is_too_long(exc: ValueError) -> bool:
    """Whether vLLM refused one request for its length (the prompt, or prompt plus images, exceeds
    max_model_len): a per-request refusal. Any other ValueError is the run's, not a request's."""
    text = str(exc).lower()
    return any(marker in text for marker in TOO_LONG)


class Engine(Protocol):
    """Generates token ids for engine requests (vLLM's `LLM`; tests use a scripted one)."""

    def generate(self, requests: Sequence[EngineRequest]) -> list[list[int]]: ...


class VLLMEngine:
    """vLLM's offline `LLM` over a local transformers checkpoint folder."""

    def __init__(
        self,
        folder: str | Path,
        dtype: str = "auto",
        tensor_parallel_size: int = 1,
        max_images: int = 1,
        trust_remote_code: bool = False,
        engine_args: dict[str, Any] | None = None,
    ) -> None:
        try:
            import vllm
        except ImportError as exc:
            raise ConfigError(f"{MISSING} ({_first_line(exc)})") from None
        self.version = str(vllm.__version__)
        self._sampling = vllm.SamplingParams
        self.llm = vllm.LLM(
            model=str(folder),
            tokenizer=str(folder),
            dtype=dtype,
            tensor_parallel_size=tensor_parallel_size,
            limit_mm_per_prompt={"image": max_images},
            trust_remote_code=trust_remote_code,
            seed=0,
            **(engine_args or {}),
        )
        model_config = getattr(getattr(self.llm, "llm_engine", None), "model_config", None)
        self.dtype = str(getattr(model_config, "dtype", dtype)).removeprefix("torch.")

    def generate(self, requests: Sequence[EngineRequest]) -> list[list[int]]:
        outputs = self.llm.generate(
            [r.engine_prompt() for r in requests],
            [self._sampling(**r.sampling()) for r in requests],
            use_tqdm=False,
        )
        return [list(out.outputs[0].token_ids) for out in outputs]


class VLLMBackend(Backend):
    """Requests built client-side (`RequestBuilder`), generated by an `Engine`, decoded as the hf backend
    decodes."""

    def __init__(
        self,
        builder: RequestBuilder,
        engine: Engine,
        batch_size: int = DEFAULT_BATCH,
        info: dict[str, Any] | None = None,
    ) -> None:
        self.builder = builder
        self.engine = engine
        super().__init__(
            name="vllm",
            default_batch_size=batch_size,
            info={
                **(info or {}),
                "model_type": builder.model_type,
                "max_images": builder.max_images,
                "stop": [builder.tokenizer.convert_ids_to_tokens(i) for i in sorted(builder.stop_ids)],
            },
        )

    @property
    def pad_colour(self) -> tuple[int, int, int]:
        return self.builder.pad_colour

    def image_mode(self, requested: str) -> str:
        return self.builder.image_mode(requested)

    def prepare(self, batch: list[Request]) -> list[EngineRequest]:
        return [self.builder.build(r) for r in batch]  # ConfigError: more images than the engine takes

    def generate(self, prepared: list[EngineRequest]) -> list[str | Failure]:
        return self._generate(prepared)

    def _generate(self, requests: list[EngineRequest]) -> list[str | Failure]:
        if not requests:
            return []
        try:
            ids = self.engine.generate(requests)
        except ValueError as exc:  # vLLM validates each request before scheduling any: the whole call fails
            if not is_too_long(exc):
                raise  # systematic (a bad sampling parameter, ...): every request would fail the same way
            if len(requests) == 1:
                return [Failure(f"vLLM refused the request: {_first_line(exc)}")]
            return [reply for r in requests for reply in self._generate([r])]
        return [
            reply_text(self.builder.tokenizer, out, set(r.stop_token_ids))
            for r, out in zip(requests, ids, strict=True)
        ]

    def close(self) -> None:
        self.engine = None  # type: ignore[assignment]  # vLLM frees the GPUs when its LLM is collected


def build_vllm_backend(
    folder: str | Path,
    dtype: str = "auto",
    tensor_parallel_size: int = 1,
    trust_remote_code: bool = False,
    stop: list[str | int] | None = None,
    max_images: int = 1,
    batch_size: int = DEFAULT_BATCH,
    engine_args: dict[str, Any] | None = None,
    info: dict[str, Any] | None = None,
) -> VLLMBackend:
    """The request builder first (seconds; one-line errors), then the engine (loads the weights)."""
    import transformers

    builder = RequestBuilder.from_folder(folder, trust_remote_code, stop, max_images)
    engine = VLLMEngine(folder, dtype, tensor_parallel_size, max_images, trust_remote_code, engine_args)
    devices = "cuda" if tensor_parallel_size == 1 else f"{tensor_parallel_size} GPUs (tensor parallel)"
    return VLLMBackend(
        builder,
        engine,
        batch_size,
        info={
            **(info or {"checkpoint": str(folder)}),
            "dtype": engine.dtype,
            "device": devices,
            "tensor_parallel_size": tensor_parallel_size,
            **(engine_args or {}),
            "vllm": engine.version,
            "transformers": transformers.__version__,
        },
    )
