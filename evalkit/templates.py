"""Conversation templates as named data: the text a model sees around a prompt, as the reference pipelines
build it. A protocol names one (or leaves the model's own chat template); a model config may name another.

`format` holds `{system}`, `{images}` (one image token and a newline per image, first, as LLaVA places
them) and `{prompt}`; chat endpoints apply their own template, so only `system` reaches them (as a system
message). New templates are new entries here (`register_template`), nothing else changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from string import Formatter

from evalkit.errors import ConfigError

VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
LLAVA_V1_SYSTEM = (
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions."
)
NATIVE = "native"  # the checkpoint's own chat template


@dataclass(frozen=True)
class Template:
    name: str
    format: str
    system: str | None = None
    stop: tuple[str, ...] = ()  # strings that end a reply in the reference pipeline
    description: str = ""
    image_sep: str = "\n"  # what follows each image token

    def render(self, prompt: str, n_images: int, image_token: str = "<image>") -> str:
        images = (image_token + self.image_sep) * n_images
        return self.format.format(system=self.system or "", images=images, prompt=prompt)

    def jinja(self, image_token: str = "<image>") -> str:
        """The template as a one-turn Jinja chat template (what a converted checkpoint's processor holds):
        the user message's images, then its text, in this template's frame."""
        images = (
            "{% for m in messages %}{% if m['content'] is not string %}{% for p in m['content'] %}"
            "{% if p['type'] == 'image' %}" + _raw(image_token + self.image_sep) + "{% endif %}"
            "{% endfor %}{% endif %}{% endfor %}"
        )
        prompt = (
            "{% for m in messages %}{% if m['role'] == 'user' %}{% if m['content'] is string %}"
            "{{ m['content'] }}{% else %}{% for p in m['content'] %}{% if p['type'] == 'text' %}"
            "{{ p['text'] }}{% endif %}{% endfor %}{% endif %}{% endif %}{% endfor %}"
        )
        out = []
        for literal, field, _, _ in Formatter().parse(self.format):
            out.append(_raw(literal))
            if field == "system":
                out.append(_raw(self.system or ""))
            elif field == "images":
                out.append(images)
            elif field == "prompt":
                out.append(prompt)
        return "".join(out)


def _raw(text: str) -> str:
    return "{% raw %}" + text + "{% endraw %}" if text else ""


TEMPLATES: dict[str, Template] = {}


def register_template(template: Template) -> Template:
    if template.name in TEMPLATES:
        raise ConfigError(f"conversation template {template.name!r} is defined twice")
    TEMPLATES[template.name] = template
    return template


def get_template(name: str) -> Template:
    try:
        return TEMPLATES[name]
    except KeyError:
        known = ", ".join(sorted(TEMPLATES))
        raise ConfigError(f"unknown conversation template {name!r} (known: {known}, or native)") from None


register_template(
    Template(
        "vicuna_v1",
        "{system} USER: {images}{prompt} ASSISTANT:",
        VICUNA_SYSTEM,
        description="LLaVA-1.5 conv_vicuna_v1 (the image tokens first, then the question)",
    )
)
register_template(
    Template("plain", "{images}{prompt}", description="no conversation: the images, the prompt")
)


register_template(
    Template(
        "llava_v1",
        "{system} USER: {images}{prompt} ASSISTANT:",
        LLAVA_V1_SYSTEM,
        description="LLaVA conv_llava_v1 (as vicuna_v1, with the 'human' system prompt)",
    )
)
register_template(
    Template(
        "chatml",
        "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{images}{prompt}<|im_end|>\n"
        "<|im_start|>assistant\n",
        "You are a helpful assistant.",
        stop=("<|im_end|>",),
        description="ChatML (Qwen-based LLaVA models: LLaVA-OneVision, LLaVA-NeXT-Qwen)",
    )
)
register_template(
    Template(
        "gemma",
        "<start_of_turn>user\n{images}{prompt}<end_of_turn>\n<start_of_turn>model\n",
        stop=("<end_of_turn>",),
        description="Gemma's turns, no system prompt; the tokenizer adds BOS",
    )
)
register_template(
    Template(
        "paligemma",
        "{images}{prompt}",
        image_sep="",
        description="PaliGemma: image tokens, then the prompt (its processor adds BOS and a final newline)",
    )
)
register_template(
    Template(
        "llama3",
        "<|start_header_id|>user<|end_header_id|>\n\n{images}{prompt}<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
        stop=("<|eot_id|>",),
        description="xtuner's llama3_chat instruction, no system prompt; the tokenizer adds BOS",
    )
)


def template_system(name: str | None) -> str | None:
    """The system prompt a named template carries (sent as a system message to chat endpoints)."""
    return get_template(name).system if name else None


def render_template(name: str, prompt: str, n_images: int, image_token: str = "<image>") -> str:
    """A named conversation template as text."""
    return get_template(name).render(prompt, n_images, image_token)


def chat_template_for(name: str) -> str:
    """A named template as the Jinja chat template a processor holds."""
    return get_template(name).jinja()
