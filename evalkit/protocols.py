"""Named evaluation protocols: the conversation template and output handling a published number used.

Per-task details (prompt wording, max_new_tokens, image mode, parser) live in each task's variants;
a protocol here fixes what is common to all tasks.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from evalkit.errors import ConfigError

SHORT = "\nAnswer the question using a single word or phrase."
MC = "\nAnswer with the option's letter from the given choices directly."
MC_CN = "\n请直接回答选项字母。"
VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)


# lmms-eval's `--reasoning_tags` default: the blocks a reasoning model writes before its answer
REASONING_TAGS: tuple[tuple[str, str], ...] = (("<think>", "</think>"), ("<analysis>", "</analysis>"))


def strip_reasoning(text: str, tags: tuple[tuple[str, str], ...]) -> str:
    """Reasoning blocks removed as lmms-eval 0.7.3 does it (`api/reasoning.py`), then outer whitespace: per
    tag pair, while both tags occur, cut from the first opening tag to the next closing tag after it; a
    closing tag left without an opening one (a chat template that pre-fills "<think>") keeps only what
    follows the last closing tag. Tags are matched exactly (case-sensitive); an unclosed block stays."""
    for start_tag, end_tag in tags:
        while start_tag in text and end_tag in text:
            start = text.find(start_tag)
            end = text.find(end_tag, start)
            if end == -1:
                break
            text = text[:start] + text[end + len(end_tag) :]
        if end_tag in text and start_tag not in text:
            text = text.rsplit(end_tag, 1)[-1]
    return text.strip()


@dataclass(frozen=True)
class Protocol:
    """A named recipe. `strip_output`: the reference pipeline strips each reply before parsing it;
    `reasoning_tags`: reasoning blocks removed before parsing (empty: none); `departures`: where evalkit
    knowingly differs from the reference pipeline (shown by `evalkit show protocol`)."""

    name: str
    version: int
    description: str
    template: str | None  # a named conversation template, or None for the model's own chat template
    strip_output: bool
    reasoning_tags: tuple[tuple[str, str], ...] = ()
    departures: tuple[str, ...] = ()

    def process(self, output: str) -> str:
        """The reply as the protocol's parsers see it (the record keeps the raw reply)."""
        if self.reasoning_tags:
            output = strip_reasoning(output, self.reasoning_tags)
        return output.strip() if self.strip_output else output

    def with_reasoning(self, strip: bool | None) -> Protocol:
        """This protocol with reasoning-block stripping switched on or off (None: the protocol's own)."""
        if strip is None:
            return self
        return replace(self, reasoning_tags=REASONING_TAGS if strip else ())

    def output_settings(self) -> dict[str, object]:
        """How replies were processed before parsing, as metrics.json records it."""
        return {"strip": self.strip_output, "reasoning_tags": [list(pair) for pair in self.reasoning_tags]}


NO_GUESSING = (
    "a reply no rule can read is counted in `unparsed` and scored wrong; where the reference code picks a "
    "random option instead (MMMU's and Q-Bench's multiple-choice parsers), evalkit never guesses"
)

PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol(
            name="llava",
            version=1,
            description="LLaVA-1.5 / ShareGPT4V official eval scripts (model_vqa_loader, vicuna_v1, pad)",
            template="vicuna_v1",
            strip_output=True,
            departures=(
                NO_GUESSING,
                "reasoning blocks are kept unless --strip-reasoning (LLaVA's scripts never strip them)",
            ),
        ),
        Protocol(
            name="lmms-eval",
            version=1,
            description="lmms-eval 0.7.3 task defaults (the model's own chat template)",
            template=None,
            strip_output=True,
            reasoning_tags=REASONING_TAGS,
            departures=(
                NO_GUESSING,
                "reasoning blocks are removed before every parser (--keep-reasoning turns that off); "
                "lmms-eval runs a task's regex filters (AI2D's) on the raw reply first, which gives the "
                "same letter unless the reply opens with 'X.' inside a block",
            ),
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
