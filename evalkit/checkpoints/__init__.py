"""Checkpoints as users have them: detected from their files, converted (once, cached) to the transformers
classes when they come from LLaVA's own code or xtuner, and fingerprinted so a run knows what it ran.

`evalkit convert SRC --out DIR` writes the conversion where the user says; `--model SRC` converts on the
fly into the cache (`$EVALKIT_CACHE/converted`, default `~/.cache/evalkit/converted`), keyed by the
source's fingerprint, so a checkpoint retrained in place is converted again.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from evalkit.checkpoints.detect import Checkpoint, detect, read_json
from evalkit.checkpoints.fingerprint import fingerprint
from evalkit.errors import InputError

__all__ = [
    "Checkpoint",
    "convert",
    "detect",
    "fingerprint",
    "locate_tower",
    "materialise",
    "trained_template",
]

# special tokens that name the chat format a tokenizer was built for
CHAT_MARKERS = (("<|eot_id|>", "llama3"), ("<|im_start|>", "chatml"), ("<start_of_turn>", "gemma"))
LLAVA_FAMILIES = ("llava-1.5", "llava-1.6", "share4v", "xtuner-llava", "llava", "llava_next", "vipllava")


def cache_root() -> Path:
    base = os.environ.get("EVALKIT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "evalkit"
    )
    return Path(base) / "converted"


def trained_template(ckpt: Checkpoint) -> str | None:
    """The conversation template the checkpoint was trained with where its files tell: a converted
    checkpoint's record; a chat format its tokenizer's special tokens name; Vicuna's for a LLaVA with a
    Llama sentencepiece tokenizer (LLaVA-1.6: llava_v1, as LLaVA's own inference picks for v1 models);
    "native" for the other transformers families, which ship their chat template. None: unknown."""
    marker = ckpt.path / "evalkit_conversion.json"
    if marker.is_file():
        return read_json(marker).get("template")
    text = "".join(  # the tokenizer's settings and special tokens (a few MB at most, read once)
        (ckpt.path / name).read_text(encoding="utf-8", errors="replace")
        for name in ("tokenizer_config.json", "special_tokens_map.json", "tokenizer.json")
        if (ckpt.path / name).is_file()
    )
    if ckpt.family not in LLAVA_FAMILIES:
        return "native"
    for token, template in CHAT_MARKERS:
        if token in text:
            return template
    sentencepiece_llama = '"LlamaTokenizer' in text or (ckpt.path / "tokenizer.model").is_file()
    if ckpt.llm in ("llama", "llava"):  # Vicuna, or a Llama of unknown chat format (None)
        if not sentencepiece_llama:
            return None
        return "llava_v1" if ckpt.family in ("llava-1.6", "llava_next") else "vicuna_v1"
    return "native" if ckpt.format == "transformers" and _has_chat_template(ckpt.path) else None


def _has_chat_template(path: Path) -> bool:
    if (path / "chat_template.jinja").is_file() or (path / "chat_template.json").is_file():
        return True
    return any(
        "chat_template" in read_json(path / name)
        for name in ("processor_config.json", "tokenizer_config.json")
        if (path / name).is_file()
    )


def locate_tower(ckpt: Checkpoint, override: str | Path | None = None) -> Path | None:
    """The CLIP tower folder an original or xtuner checkpoint needs (None: it needs none)."""
    if ckpt.format == "transformers":
        return None
    name = override or ckpt.vision_tower
    if ckpt.format == "xtuner" and not name:
        name = _xtuner_tower(ckpt)
    if not name:
        raise InputError(f"{ckpt.path}: which CLIP vision tower? give --vision-tower PATH")
    path = Path(str(name)).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise InputError(f"{path}: the vision tower folder has no config.json")
        return path.resolve()
    from evalkit.checkpoints.hub import looks_like_hub_id, resolve

    if not looks_like_hub_id(str(name)):  # a folder that is not there (the trainer's machine's path?)
        raise InputError(f"vision tower {name}: no such folder, and not a hub id; give --vision-tower PATH")
    return resolve(str(name), what="vision tower")[0]


def _xtuner_tower(ckpt: Checkpoint) -> str | None:
    """xtuner checkpoints do not name their tower; the LLaVA ones were all trained on CLIP-L/336."""
    adapter = ckpt.path / "visual_encoder_adapter" / "adapter_config.json"
    if adapter.is_file():
        base = read_json(adapter).get("base_model_name_or_path")
        if base:
            return str(base)
    return "openai/clip-vit-large-patch14-336"


def _parts(ckpt: Checkpoint, tower: Path) -> Any:
    if ckpt.format == "xtuner":
        from evalkit.checkpoints.xtuner import xtuner_parts

        return xtuner_parts(ckpt, tower)
    from evalkit.checkpoints.writer import original_parts

    return original_parts(ckpt, tower)


def convert(ckpt: Checkpoint, out: Path, vision_tower: str | Path | None = None) -> Path:
    """Write `ckpt` as a transformers checkpoint in `out` (which must not exist yet)."""
    from evalkit.checkpoints.writer import write_marker, write_transformers
    from evalkit.templates import NATIVE, chat_template_for, get_template

    if ckpt.format == "transformers":
        raise InputError(f"{ckpt.path}: already a transformers checkpoint; nothing to convert")
    tower = locate_tower(ckpt, vision_tower)
    assert tower is not None
    parts = _parts(ckpt, tower)
    template = trained_template(ckpt)
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        named = template if template and template != NATIVE else None
        stops = get_template(named).stop if named else ()
        write_transformers(parts, tmp, chat_template_for(named) if named else None, stops)
        write_marker(
            tmp,
            {
                "source": str(ckpt.path.resolve()),
                "format": ckpt.format,
                "family": ckpt.family,
                "source_fingerprint": fingerprint(ckpt.path),
                "vision_tower": str(tower),
                "template": template,
                "image_aspect_ratio": parts.image_aspect_ratio,
            },
        )
        if out.exists():  # another process converted the same source meanwhile
            shutil.rmtree(tmp)
        else:
            tmp.rename(out)
    except (ValueError, TypeError, KeyError) as exc:  # transformers refusing a config, processor or tokenizer
        shutil.rmtree(tmp, ignore_errors=True)
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{ckpt.path}: cannot convert ({detail})") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def materialise(ckpt: Checkpoint, vision_tower: str | Path | None = None) -> Path:
    """A transformers folder for `ckpt`: itself, or its cached conversion (made now if missing)."""
    if not ckpt.needs_conversion:
        return ckpt.path
    tower = locate_tower(ckpt, vision_tower)
    from evalkit.checkpoints.writer import CONVERTER_VERSION

    key = fingerprint(ckpt.path) + ("-" + fingerprint(tower) if tower else "") + f"-c{CONVERTER_VERSION}"
    out = cache_root() / f"{ckpt.path.resolve().name}-{key}"
    if (out / "evalkit_conversion.json").is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock

    with FileLock(f"{out}.lock"):  # torchrun ranks (or two runs) convert once; the others wait for it
        if (out / "evalkit_conversion.json").is_file():
            return out
        return convert(ckpt, out, tower)
