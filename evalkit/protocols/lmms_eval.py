"""Protocol `lmms-eval`: lmms-eval 0.7.3's task defaults, as its CLI runs them (the model's own chat
template, native images, every reply stripped before `process_results`, reasoning blocks removed first).

lmms-eval's generation limits and parsers are set per task in its task YAMLs, so this protocol has no
per-kind defaults for them: each task's variant names its own.
"""

from __future__ import annotations

from evalkit.protocols import NO_GUESSING, REASONING_TAGS, Protocol

PROTOCOL = Protocol(
    name="lmms-eval",
    version=1,
    description="lmms-eval 0.7.3 task defaults (the model's own chat template)",
    reference="EvolvingLMMs-Lab/lmms-eval 0.7.3 (the PyPI release)",
    template=None,
    strip_output=True,
    reasoning_tags=REASONING_TAGS,
    image_mode="native",
    departures=(
        NO_GUESSING,
        "reasoning blocks are removed before every parser (--keep-reasoning turns that off); "
        "lmms-eval runs a task's regex filters (AI2D's) on the raw reply first, which gives the "
        "same letter unless the reply opens with 'X.' inside a block",
    ),
)
