"""transformers backend: `AutoProcessor` + `AutoModelForImageTextToText` (LLaVA-1.5, LLaVA-NeXT, ...).

Batched greedy decoding with left padding, so a batch gives the same texts as one-at-a-time (cut at
EOS). CPU work (templating, tokenising, pixel preprocessing) happens in `prepare`, off the accelerator's
path; `generate` moves tensors once, runs under `torch.inference_mode`, and copies the new tokens back
once per batch - no per-token host-device syncs of ours. On CUDA out-of-memory the batch is split and
the smaller size remembered.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evalkit.backends.base import CLIP_MEAN_RGB, Backend, Failure, Request
from evalkit.errors import ConfigError
from evalkit.models import check_dtype
from evalkit.templates import render_template

# Models whose processor tiles images at their own aspect ratio (LLaVA-1.6 "anyres"): LLaVA's own pipeline
# does not pad these to a square, so the protocol's `pad` mode becomes `native` for them.
ANYRES_MODEL_TYPES = frozenset({"llava_next", "llava_onevision"})


def pick_device() -> str:
    import torch

    if torch.cuda.is_available():
        return f"cuda:{torch.cuda.current_device()}"  # the rank's own GPU under torchrun
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


class HFBackend(Backend):
    def __init__(
        self,
        checkpoint: str | Path,
        dtype: str = "auto",
        device: str | None = None,
        trust_remote_code: bool = False,
        batch_size: int = 8,
        revision: str | None = None,
        allow_hub: bool = False,
    ) -> None:
        import torch
        import transformers
        from transformers import AutoModelForImageTextToText, AutoProcessor

        check_dtype(dtype)
        path = Path(checkpoint).expanduser()
        if path.is_dir() and not (path / "config.json").exists():
            raise ConfigError(
                f"{path}: not a transformers checkpoint folder (no config.json); "
                "original LLaVA checkpoints need converting first"
            )
        if not path.is_dir() and not allow_hub:
            raise ConfigError(f"checkpoint folder not found: {path}")
        # a hub repo id is only taken from a model config (the user's explicit choice to download)
        source = str(path) if path.is_dir() else str(checkpoint)
        hub: dict[str, Any] = {} if path.is_dir() else {"revision": revision}
        self.device = device or pick_device()
        self.processor = AutoProcessor.from_pretrained(source, trust_remote_code=trust_remote_code, **hub)
        self.tokenizer = getattr(self.processor, "tokenizer", self.processor)
        self.tokenizer.padding_side = "left"
        torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
        model = AutoModelForImageTextToText.from_pretrained(
            source, dtype=torch_dtype, trust_remote_code=trust_remote_code, **hub
        )
        self.model = model.to(self.device).eval()
        eos = self.model.generation_config.eos_token_id
        eos = eos if eos is not None else self.tokenizer.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos])
        self.pad_id = (
            self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else min(self.eos_ids)
        )
        self.image_token = getattr(self.processor, "image_token", "<image>")
        self.max_rows: int | None = None
        super().__init__(
            name="hf",
            default_batch_size=batch_size,
            info={
                "checkpoint": source,
                **hub,
                "model_type": self.model.config.model_type,
                "dtype": str(self.model.dtype).removeprefix("torch."),
                "device": self.device,
                "transformers": transformers.__version__,
                "torch": torch.__version__,
            },
        )

    @property
    def pad_colour(self) -> tuple[int, int, int]:
        mean = getattr(getattr(self.processor, "image_processor", None), "image_mean", None)
        return tuple(int(x * 255) for x in mean) if mean else CLIP_MEAN_RGB  # type: ignore[return-value]

    def image_mode(self, requested: str) -> str:
        return (
            "native"
            if requested == "pad" and self.model.config.model_type in ANYRES_MODEL_TYPES
            else requested
        )

    def render(self, request: Request) -> str:
        """The full text the model sees: the protocol's template, or the checkpoint's chat template."""
        if request.template is not None:
            return render_template(request.template, request.prompt, len(request.images), self.image_token)
        content: list[dict[str, Any]] = [{"type": "image"} for _ in request.images]
        content.append({"type": "text", "text": request.prompt})
        return self.processor.apply_chat_template(
            [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
        )

    def prepare(self, batch: list[Request]) -> tuple[dict[str, Any], int]:
        texts = [self.render(r) for r in batch]
        images = [img for r in batch for img in r.images]
        inputs = self.processor(text=texts, images=images or None, padding=True, return_tensors="pt")
        return dict(inputs), max(r.max_new_tokens for r in batch)

    def generate(self, prepared: tuple[dict[str, Any], int]) -> list[str | Failure]:
        inputs, max_new_tokens = prepared
        rows = inputs["input_ids"].shape[0]
        splittable = all(getattr(v, "shape", (rows,))[:1] == (rows,) for v in inputs.values())
        step = min(rows, self.max_rows or rows) if splittable else rows
        texts: list[str | Failure] = []
        start = 0
        while start < rows:
            part = inputs if step == rows else {k: v[start : start + step] for k, v in inputs.items()}
            try:
                texts.extend(self._generate_rows(part, max_new_tokens))
                start += step
            except Exception as exc:
                if not _is_oom(exc) or step == 1 or not splittable:
                    raise
                import torch

                torch.cuda.empty_cache()
                step = max(1, step // 2)
                self.max_rows = step
        return texts

    def _generate_rows(self, inputs: dict[str, Any], max_new_tokens: int) -> list[str]:
        import torch

        dtype = self.model.dtype
        moved = {
            k: (
                v.to(self.device, dtype=dtype, non_blocking=True)
                if v.is_floating_point()
                else v.to(self.device, non_blocking=True)
            )
            for k, v in inputs.items()
        }
        with torch.inference_mode():
            out = self.model.generate(
                **moved,
                do_sample=False,
                num_beams=1,
                max_new_tokens=max_new_tokens,
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=self.pad_id,
            )
        new_tokens = out[:, moved["input_ids"].shape[1] :].cpu().tolist()
        return [
            self.tokenizer.decode(_cut_at_eos(ids, self.eos_ids), skip_special_tokens=True)
            for ids in new_tokens
        ]


def _cut_at_eos(ids: list[int], eos_ids: set[int]) -> list[int]:
    for i, token in enumerate(ids):
        if token in eos_ids:
            return ids[:i]
    return ids


def _is_oom(exc: Exception) -> bool:
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()
