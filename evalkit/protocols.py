"""Named evaluation protocols: the conversation template and output handling a published number used.

Per-task details (prompt wording, max_new_tokens, image mode, parser) live in each task's variants;
a protocol here fixes what is common to all tasks.
"""

from __future__ import annotations

from dataclasses import dataclass

from evalkit.errors import ConfigError

SHORT = "\nAnswer the question using a single word or phrase."
MC = "\nAnswer with the option's letter from the given choices directly."
MC_CN = "\n请直接回答选项字母。"
VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)


@dataclass(frozen=True)
class Protocol:
    name: str
    version: int
    description: str
    template: str | None  # a named conversation template, or None for the model's own chat template
    strip_output: bool  # the reference pipeline stripped decoded outputs before parsing


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol(
            name="llava",
            version=1,
            description="LLaVA-1.5 / ShareGPT4V official eval scripts (model_vqa_loader, vicuna_v1, pad)",
            template="vicuna_v1",
            strip_output=True,
        ),
        Protocol(
            name="lmms-eval",
            version=1,
            description="lmms-eval 0.7.3 task defaults (the model's own chat template)",
            template=None,
            strip_output=False,
        ),
    )
}


def get_protocol(name: str) -> Protocol:
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ConfigError(f"unknown protocol {name!r} (known: {', '.join(sorted(PROTOCOLS))})") from None


TEMPLATE_SYSTEM: dict[str, str | None] = {"vicuna_v1": VICUNA_SYSTEM, "plain": None}


def template_system(template: str | None) -> str | None:
    """The system prompt a named template carries (sent as a system message to chat endpoints)."""
    if template is not None and template not in TEMPLATE_SYSTEM:
        raise ConfigError(f"unknown conversation template {template!r} (known: {', '.join(TEMPLATE_SYSTEM)})")
    return TEMPLATE_SYSTEM.get(template) if template else None


def render_template(template: str, prompt: str, n_images: int, image_token: str = "<image>") -> str:
    """A named conversation template as text; the image placeholders come first, as in LLaVA."""
    images = (image_token + "\n") * n_images
    if template == "vicuna_v1":
        return f"{VICUNA_SYSTEM} USER: {images}{prompt} ASSISTANT:"
    if template == "plain":
        return f"{images}{prompt}"
    raise ConfigError(f"unknown conversation template {template!r} (known: vicuna_v1, plain)")
