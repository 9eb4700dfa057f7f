"""Named evaluation protocols: the recipe a published number was made with, as data with defaults.

A protocol fixes what is common to the tasks it covers: the conversation template, how replies are handled
before parsing (stripping, reasoning blocks), and, per answer kind (yes/no, option letter, short answer,
open, free text), the default image mode, generation limit, prompt builder and scorer. A task declares
which protocols it supports and only what is benchmark-specific under each (`evalkit.task.Variant`); a
field it leaves out comes from here. Each protocol is one module of this package defining `PROTOCOL`:
adding a protocol is adding a module (plus the per-task entries), nothing else changes.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from typing import TYPE_CHECKING, Literal

from evalkit.errors import ConfigError
from evalkit.templates import VICUNA_SYSTEM, render_template, template_system

if TYPE_CHECKING:
    from evalkit.data.readers import Sample
    from evalkit.scoring.types import Scored

__all__ = [
    "MC",
    "MC_CN",
    "PROTOCOLS",
    "REASONING_TAGS",
    "SHORT",
    "VICUNA_SYSTEM",
    "AnswerKind",
    "ImageMode",
    "Protocol",
    "all_protocols",
    "get_protocol",
    "render_template",
    "strip_reasoning",
    "template_system",
]

# Instruction suffixes of LLaVA-1.5's evaluation prompts (BENCHMARKS.md), shared by several protocols
SHORT = "\nAnswer the question using a single word or phrase."
MC = "\nAnswer with the option's letter from the given choices directly."
MC_CN = "\n请直接回答选项字母。"

AnswerKind = Literal["yes_no", "option", "short", "open", "free"]
ImageMode = Literal["pad", "crop", "native"]
PromptFn = Callable[["Sample"], str]
ScoreFn = Callable[[str, "Sample"], "Scored"]

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
    knowingly differs from the reference pipeline (shown by `evalkit show protocol`). The mappings are the
    defaults per answer kind a task's variant may leave out."""

    name: str
    version: int
    description: str
    template: str | None  # a named conversation template (evalkit.templates), or None: the model's own
    strip_output: bool
    reasoning_tags: tuple[tuple[str, str], ...] = ()
    departures: tuple[str, ...] = ()
    reference: str = ""  # the code this protocol reproduces, with the version or commit read
    image_mode: ImageMode = "native"
    # "processor": the model's processor tokenizes the whole text; "llava": the text between images is
    # tokenized chunk by chunk, BOS kept only on the first (LLaVA's `tokenizer_image_token`)
    tokenization: str = "processor"
    # with template None, the model's own is its chat template ("chat"), or the template it was trained
    # with where that is known ("trained": what a wrapper that frames prompts itself applies)
    own_template: str = "chat"
    max_new_tokens: Mapping[str, int] = field(default_factory=dict)
    prompts: Mapping[str, PromptFn] = field(default_factory=dict)
    scorers: Mapping[str, ScoreFn] = field(default_factory=dict)

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
    "random option instead, evalkit never guesses"
)


@cache
def all_protocols() -> dict[str, Protocol]:
    """Every protocol: the `PROTOCOL` of each module of this package, by name."""
    found: dict[str, Protocol] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        protocol = getattr(importlib.import_module(f"{__name__}.{info.name}"), "PROTOCOL", None)
        if isinstance(protocol, Protocol):
            if protocol.name in found:
                raise ConfigError(f"protocol {protocol.name!r} is defined twice")
            found[protocol.name] = protocol
    return found


class _Protocols(Mapping[str, Protocol]):
    """`PROTOCOLS[name]`: the registry, read on first use (protocol modules import the scoring library)."""

    def __getitem__(self, name: str) -> Protocol:
        return all_protocols()[name]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(all_protocols())

    def __len__(self) -> int:
        return len(all_protocols())


PROTOCOLS: Mapping[str, Protocol] = _Protocols()


def get_protocol(name: str) -> Protocol:
    protocols = all_protocols()
    try:
        return protocols[name]
    except KeyError:
        raise ConfigError(f"unknown protocol {name!r} (known: {', '.join(sorted(protocols))})") from None
