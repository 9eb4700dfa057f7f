"""transformers backend: `AutoProcessor` + `AutoModelForImageTextToText` (LLaVA-1.5, LLaVA-NeXT, ...).

Batched greedy decoding with left padding, so a batch gives the same texts as one-at-a-time (cut at
EOS). CPU work (templating, tokenising, pixel preprocessing) happens in `prepare`, off the accelerator's
path; `generate` moves tensors once, runs under `torch.inference_mode`, and copies the new tokens back
once per batch - no per-token host-device syncs of ours. On CUDA out-of-memory the batch is split and
the smaller size remembered.

What the model is asked (the text, LLaVA's token ids, the stop ids, the pad colour, the image mode) comes
from module-level functions of the processor and tokenizer alone, so the vllm backend builds its requests
with the same code.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from evalkit.backends.base import CLIP_MEAN_RGB, Backend, Failure, Request
from evalkit.backends.malloc import keep_freed_memory
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
    prepare_in_process = True  # templating, tokenising and pixel work run in a forked worker process

    def __init__(
        self,
        checkpoint: str | Path,
        dtype: str = "auto",
        device: str | None = None,
        trust_remote_code: bool = False,
        batch_size: int = 8,
        stop: list[str | int] | None = None,
        info: dict[str, Any] | None = None,
    ) -> None:
        """`checkpoint`: a local transformers folder (hub ids and other formats are resolved before)."""
        import torch
        import transformers

        check_dtype(dtype)
        path = Path(checkpoint).expanduser()
        if not (path / "config.json").is_file():
            raise ConfigError(f"{path}: not a transformers checkpoint folder (no config.json)")
        self.device = device or pick_device()
        if self.device == "cpu":
            keep_freed_memory()  # generation's large tensors reuse freed heap, not fresh zeroed pages
        self.processor, self.model = _load(path, dtype, trust_remote_code)
        self.model = self.model.to(self.device).eval()
        self.tokenizer = getattr(self.processor, "tokenizer", self.processor)
        self.tokenizer.padding_side = "left"
        self.stop_ids = self._stop_ids(stop)
        self.eos_ids = self.stop_ids
        self.pad_id = (
            self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else min(self.eos_ids)
        )
        self.image_token = getattr(self.processor, "image_token", "<image>")
        self.image_token_id = self.tokenizer.convert_tokens_to_ids(self.image_token)
        self.adds_bos = _adds_bos(self.tokenizer)
        self.max_rows: int | None = None
        super().__init__(
            name="hf",
            default_batch_size=batch_size,
            info={
                **(info or {"checkpoint": str(path)}),
                "model_type": self.model.config.model_type,
                "dtype": str(self.model.dtype).removeprefix("torch."),
                "device": self.device,
                "stop": [self.tokenizer.convert_ids_to_tokens(i) for i in sorted(self.stop_ids)],
                "transformers": transformers.__version__,
                "torch": torch.__version__,
            },
        )

    @property
    def generates_on_cpu(self) -> bool:
        return self.device == "cpu"

    def _stop_ids(self, stop: list[str | int] | None) -> set[int]:
        return stop_ids(self.tokenizer, self.model.generation_config, stop)

    def template_stops(self, template: str | None) -> set[int]:
        return template_stop_ids(self.tokenizer, template)

    @property
    def pad_colour(self) -> tuple[int, int, int]:
        return processor_pad_colour(self.processor)

    def image_mode(self, requested: str) -> str:
        return applied_image_mode(self.model.config.model_type, requested)

    def render(self, request: Request) -> str:
        return render_prompt(self.processor, request, self.image_token, self.info.get("checkpoint"))

    def prepare(self, batch: list[Request]) -> tuple[dict[str, Any], int, frozenset[int]]:
        texts = [self._no_double_bos(self.render(r)) for r in batch]
        # one image list per request: processors that count images per sample (Gemma 3, Idefics3/SmolVLM,
        # ...) need the nesting to match each text's image tokens at batch > 1
        images = [list(r.images) for r in batch] if any(r.images for r in batch) else None
        llava = any(r.tokenization == "llava" for r in batch) and self._expands_image_token()
        # under LLaVA's tokenization the processor sees only the image tokens (it gives the pixels and each
        # image's run length); the text is tokenized once, chunk by chunk, below
        asked = [_image_tokens(self.image_token, len(r.images)) for r in batch] if llava else texts
        inputs = dict(self.processor(text=asked, images=images, padding=True, return_tensors="pt"))
        inputs.pop("labels", None)  # PaliGemma's processor adds training labels; generation takes none
        if llava:
            inputs.update(self._llava_tokens(texts, inputs["input_ids"], inputs["attention_mask"]))
        stops = frozenset(self.stop_ids | self.template_stops(batch[0].template))
        return inputs, max(r.max_new_tokens for r in batch), stops

    def _no_double_bos(self, text: str) -> str:
        return strip_double_bos(self.tokenizer, self.adds_bos, text)

    def _expands_image_token(self) -> bool:
        return expands_image_token(self.processor)

    def _llava_tokens(self, texts: list[str], joint: Any, mask: Any) -> dict[str, Any]:
        """LLaVA's tokenization (`llava_token_rows`), image i the processor's i-th run of image tokens
        (`joint`: its ids for the image tokens alone). Left padded."""
        import numpy as np
        import torch

        runs = [
            _runs([t for t, k in zip(ids, keep, strict=True) if k], self.image_token_id)
            for ids, keep in zip(joint.tolist(), mask.tolist(), strict=True)
        ]
        rows = llava_token_rows(self.tokenizer, texts, self.image_token, self.image_token_id, runs)
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        keep = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            ids[i, width - len(row) :] = row
            keep[i, width - len(row) :] = 1
        return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(keep)}

    def generate(self, prepared: tuple[dict[str, Any], int, frozenset[int]]) -> list[str | Failure]:
        inputs, max_new_tokens, stops = prepared
        rows = inputs["input_ids"].shape[0]
        splittable = all(getattr(v, "shape", (rows,))[:1] == (rows,) for v in inputs.values())
        step = min(rows, self.max_rows or rows) if splittable else rows
        texts: list[str | Failure] = []
        start = 0
        while start < rows:
            part = inputs if step == rows else {k: v[start : start + step] for k, v in inputs.items()}
            try:
                texts.extend(self._generate_rows(part, max_new_tokens, stops))
                start += step
            except Exception as exc:
                if not _is_oom(exc) or step == 1 or not splittable:
                    raise
                import torch

                torch.cuda.empty_cache()
                step = max(1, step // 2)
                self.max_rows = step
        return texts

    def _generate_rows(self, inputs: dict[str, Any], max_new_tokens: int, stops: frozenset[int]) -> list[str]:
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
                eos_token_id=sorted(stops),
            )
        new_tokens = out[:, moved["input_ids"].shape[1] :].cpu().tolist()
        return [reply_text(self.tokenizer, ids, stops) for ids in new_tokens]


def render_prompt(processor: Any, request: Request, image_token: str, checkpoint: str | None = None) -> str:
    """The full text the model sees: the protocol's template, or the checkpoint's chat template."""
    if request.template is not None:
        return render_template(request.template, request.prompt, len(request.images), image_token)
    content: list[dict[str, Any]] = [{"type": "image"} for _ in request.images]
    content.append({"type": "text", "text": request.prompt})
    if not getattr(processor, "chat_template", None):
        raise ConfigError(
            f"{checkpoint or 'the checkpoint'}: no chat template; name a conversation "
            "template (--template, or template: in the model config; evalkit list templates)"
        )
    return processor.apply_chat_template(
        [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
    )


def strip_double_bos(tokenizer: Any, adds_bos: bool, text: str) -> str:
    """A rendered chat template that starts with BOS, for a tokenizer that adds one itself."""
    bos = tokenizer.bos_token
    return text[len(bos) :] if adds_bos and bos and text.startswith(bos) else text


def expands_image_token(processor: Any) -> bool:
    """Processors that stand each image for a run of copies of one image token (LLaVA, LLaVA-NeXT)."""
    return type(processor).__name__ in ("LlavaProcessor", "LlavaNextProcessor")


def llava_token_ids(
    tokenizer: Any, text: str, image_token: str, image_token_id: int, runs: list[int]
) -> list[int]:
    """LLaVA's `tokenizer_image_token` for one text (`llava_token_rows`)."""
    return llava_token_rows(tokenizer, [text], image_token, image_token_id, [runs])[0]


def llava_token_rows(
    tokenizer: Any, texts: list[str], image_token: str, image_token_id: int, runs: list[list[int]]
) -> list[list[int]]:
    """LLaVA's `tokenizer_image_token`: the text between images tokenized chunk by chunk (each chunk's BOS
    dropped but the first's), so a chunk starting "\\n" keeps the "▁" a Llama tokenizer puts before it;
    image i of text j becomes `runs[j][i]` copies of the image token. Every chunk of every text is
    tokenized in one call."""
    split = [text.split(image_token) for text in texts]
    for chunks, lengths in zip(split, runs, strict=True):
        if len(lengths) != len(chunks) - 1:  # an image token written in the prompt
            raise ConfigError(
                f"cannot tokenize as LLaVA does: {len(chunks) - 1} {image_token} in the text but "
                f"{len(lengths)} images ({image_token} written in a prompt?)"
            )
    flat = tokenizer([chunk for chunks in split for chunk in chunks]).input_ids
    rows: list[list[int]] = []
    start = 0
    for chunks, lengths in zip(split, runs, strict=True):
        ids = flat[start : start + len(chunks)]
        start += len(chunks)
        offset = 1 if ids[0][:1] == [tokenizer.bos_token_id] else 0
        row = ids[0][:1] if offset else []
        for i, chunk in enumerate(ids):
            if i:
                row += [image_token_id] * lengths[i - 1]
            row += chunk[offset:]
        rows.append(row)
    return rows


def _image_tokens(image_token: str, count: int) -> str:
    """`count` image tokens apart from each other (so each image's run stays its own), for the processor."""
    return " ".join([image_token] * count)


def stop_ids(tokenizer: Any, generation_config: Any, stop: list[str | int] | None) -> set[int]:
    """Every EOS id the generation config and tokenizer name, and the model config's stop tokens."""
    ids: set[int] = set()
    for token in stop or []:
        found = token if isinstance(token, int) else tokenizer.convert_tokens_to_ids(token)
        if not isinstance(found, int) or found == tokenizer.unk_token_id or found < 0:
            raise ConfigError(f"stop token {token!r} is not a token of this model's tokenizer")
        ids.add(found)
    eos = generation_config.eos_token_id
    found_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    if tokenizer.eos_token_id is not None:
        found_ids.add(tokenizer.eos_token_id)
    if not found_ids | ids:
        raise ConfigError("the checkpoint names no EOS token; give `stop:` in the model config")
    return found_ids | ids


def template_stop_ids(tokenizer: Any, template: str | None) -> set[int]:
    """Stop strings of a named template that are single tokens of this tokenizer."""
    if template is None:
        return set()
    from evalkit.templates import get_template

    ids = (tokenizer.convert_tokens_to_ids(t) for t in get_template(template).stop)
    return {i for i in ids if isinstance(i, int) and i >= 0 and i != tokenizer.unk_token_id}


def processor_pad_colour(processor: Any) -> tuple[int, int, int]:
    """Background for the `pad` image mode: the image processor's mean colour (LLaVA's expand2square)."""
    mean = getattr(getattr(processor, "image_processor", None), "image_mean", None)
    return tuple(int(x * 255) for x in mean) if mean else CLIP_MEAN_RGB  # type: ignore[return-value]


def applied_image_mode(model_type: str, requested: str) -> str:
    """The protocol's image mode as applied to a model type (anyres models keep their own tiling)."""
    return "native" if requested == "pad" and model_type in ANYRES_MODEL_TYPES else requested


def reply_text(tokenizer: Any, ids: list[int], stops: frozenset[int] | set[int]) -> str:
    """The generated ids up to the first stop id, decoded without special tokens."""
    return tokenizer.decode(_cut_at_eos(ids, stops), skip_special_tokens=True)


def _runs(ids: list[int], token: int) -> list[int]:
    """Lengths of the runs of `token` in `ids`, in order."""
    runs: list[int] = []
    previous = None
    for t in ids:
        if t == token:
            if previous == token:
                runs[-1] += 1
            else:
                runs.append(1)
        previous = t
    return runs


def _adds_bos(tokenizer: Any) -> bool:
    bos = tokenizer.bos_token_id
    return bos is not None and tokenizer("a").input_ids[:1] == [bos]


def _load(path: Path, dtype: str, trust_remote_code: bool) -> tuple[Any, Any]:
    """Processor and model, with one-line errors: a package a processor needs, weights that do not fit."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    try:
        processor = AutoProcessor.from_pretrained(path, trust_remote_code=trust_remote_code)
        model, info = AutoModelForImageTextToText.from_pretrained(
            path,
            dtype="auto" if dtype == "auto" else getattr(torch, dtype),
            trust_remote_code=trust_remote_code,
            output_loading_info=True,
        )
    except ImportError as exc:
        raise ConfigError(f"{path}: {_missing_package(exc)}") from None
    except ValueError as exc:
        if "trust_remote_code" in str(exc):
            raise ConfigError(
                f"{path}: the checkpoint needs its own Python code; review it, then pass --trust-remote-code"
            ) from None
        raise ConfigError(f"{path}: {_first_line(exc)}") from None
    _complete_processor(processor, model.config)
    missing = [k for k in info.get("missing_keys", []) if not k.endswith(("position_ids", "inv_freq"))]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise ConfigError(
            f"{path}: weights missing for {', '.join(missing[:3])}{more}; refusing random weights"
        )
    return processor, model


def _complete_processor(processor: Any, config: Any) -> None:
    """LLaVA processors saved before transformers counted image tokens in the processor (llava-hf and xtuner
    conversions of early 2024) lack `patch_size` and the select strategy; the model config has them."""
    if type(processor).__name__ not in ("LlavaProcessor", "LlavaNextProcessor"):
        return
    if getattr(processor, "patch_size", None) is None:
        processor.patch_size = config.vision_config.patch_size
        processor.num_additional_image_tokens = 1 if config.vision_config.model_type.startswith("clip") else 0
    if getattr(processor, "vision_feature_select_strategy", None) is None:
        processor.vision_feature_select_strategy = config.vision_feature_select_strategy


def _missing_package(exc: ImportError) -> str:
    """ "the processor needs the Python package X (pip install X)" from transformers' import errors."""
    text = str(exc)
    found = re.search(r"(\w+) requires the (\S+) librar", text) or re.search(
        r"No module named '([\w.]+)'", text
    )
    if found and found.lastindex == 2:
        package = PACKAGES.get(found.group(2).lower(), found.group(2).lower())
        return f"{found.group(1)} needs the Python package {package} (pip install {package})"
    if found:
        package = found.group(1).split(".")[0]
        return (
            f"the checkpoint's processor or model needs the Python package {package} (pip install {package})"
        )
    return _first_line(exc)


PACKAGES = {"pytorch": "torch", "pillow": "pillow", "pil": "pillow", "opencv": "opencv-python"}


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _cut_at_eos(ids: list[int], eos_ids: frozenset[int] | set[int]) -> list[int]:
    for i, token in enumerate(ids):
        if token in eos_ids:
            return ids[:i]
    return ids


def _is_oom(exc: Exception) -> bool:
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()
