"""Exact-match scoring: a named normaliser on the reply (and, where the rule says so, on the target),
then string equality. Each normaliser is one published rule:

- `rstrip_period_lower`: LLaVA's `convert_gqa_for_eval.py` (`text.rstrip('.').lower()`); GQA's own
  `eval.py` then compares with the raw answer.
- `strip_lower`: VLMEvalKit's GQA (`process_line(..., method="accuracy")`: strip and lower-case both
  sides, nothing else: "Yes." is not "yes").
- `lower_no_punctuation`: lmms-eval's `exact_match` with `ignore_case` and `ignore_punctuation` (every
  `string.punctuation` character deleted), applied to both sides of the stripped reply.

A reply that normalises to nothing is unparsed: there is no answer to compare, and it scores 0.
"""

from __future__ import annotations

import string
from collections.abc import Callable

from evalkit.data.readers import Sample
from evalkit.scoring.types import Scored

Normaliser = Callable[[str], str]

_NO_PUNCTUATION = str.maketrans("", "", string.punctuation)


def rstrip_period_lower(text: str) -> str:
    """Trailing periods removed (all of them), then lower-cased; nothing else (no strip)."""
    return text.rstrip(".").lower()


def strip_lower(text: str) -> str:
    """Stripped and lower-cased, nothing else."""
    return text.strip().lower()


def lower_no_punctuation(text: str) -> str:
    """Stripped, lower-cased, every ASCII punctuation character deleted (inner too: t-shirt -> tshirt)."""
    return text.strip().lower().translate(_NO_PUNCTUATION)


def exact_match(normalise: Normaliser, target: Normaliser | None = None) -> Callable[[str, Sample], Scored]:
    """A scorer: 1.0 when `normalise(reply)` equals the sample's target, itself passed through `target`
    when given (raw otherwise). The rule recorded is the normaliser's name."""

    def score(output: str, sample: Sample) -> Scored:
        answer = normalise(output)
        if not answer:
            return Scored(None, 0.0, "unparsed")
        gold = target(sample.target) if target else sample.target
        return Scored(answer, float(answer == gold), normalise.__name__)

    both = f", {target.__name__}" if target else ""
    score.__qualname__ = f"exact_match({normalise.__name__}{both})"
    return score
