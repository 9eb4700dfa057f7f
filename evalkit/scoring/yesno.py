"""Yes/no answer parsers. Each is one published rule, returns the label and the rule that fired,
and never guesses: an output no rule covers is unparsed (None).

- `yes_no_prefix`: the official MME calculation tool (`eval_tool/calculation.py`).
- `yes_no_prefix_lenient`: lmms-eval's MME variant (strips ".", maps a bare y/n).
- `yes_no_negation`: LLaVA's `eval_pope.py` (first sentence, negation word -> no, otherwise yes).
- `yes_no_exact`: lmms-eval's POPE rule (lower-cased, stripped output must be "yes" or "no").
- `yes_no_words`: VLMEvalKit's `YOrN_Extraction` (a lone yes or no among the words of the reply).
- `yes_no_contains`: lmms-eval's rule-based HallusionBench scoring ("yes" anywhere -> yes, else no).
"""

from __future__ import annotations

from evalkit.scoring.types import Parsed
from evalkit.scoring.vqa import process_punctuation

YES, NO = "yes", "no"


def yes_no_prefix(output: str) -> Parsed:
    """MME official: the lower-cased output is yes/no exactly, else "yes"/"no" within its first 4 chars."""
    text = output.lower()
    return Parsed(text, "exact") if text in (YES, NO) else _prefix4(text)


def yes_no_prefix_lenient(output: str) -> Parsed:
    """lmms-eval MME: lower-case, strip, drop every "."; then exact, a lone y/n, or the 4-char prefix."""
    text = output.lower().strip().replace(".", "")
    if text in (YES, NO):
        return Parsed(text, "exact")
    if len(text) == 1:
        return Parsed({"y": YES, "n": NO}.get(text), "letter" if text in "yn" else "unparsed")
    return _prefix4(text)


def _prefix4(text: str) -> Parsed:
    """MME's fallback: "yes" within the first 4 characters, else "no" within them."""
    head = text[:4]
    if YES in head:
        return Parsed(YES, "prefix4")
    if NO in head:
        return Parsed(NO, "prefix4")
    return Parsed(None, "unparsed")


NEGATION_WORDS = frozenset({"No", "not", "no"})


def yes_no_negation(output: str) -> Parsed:
    """LLaVA eval_pope: keep the text before the first ".", drop ",", split on spaces; a word
    No/not/no means no, anything else (even an empty reply) yes - the published rule has no "unparsed"."""
    text = output.split(".", 1)[0].replace(",", "")
    if NEGATION_WORDS.intersection(text.split(" ")):
        return Parsed(NO, "negation_word")
    return Parsed(YES, "default_yes")


def yes_no_exact(output: str) -> Parsed:
    """lmms-eval POPE: the stripped, lower-cased output must be exactly "yes" or "no"."""
    text = output.lower().strip()
    if text in (YES, NO):
        return Parsed(text, "exact")
    return Parsed(None, "unparsed")


def yes_no_words(output: str) -> Parsed:
    """VLMEvalKit's YOrN_Extraction (Y/N datasets, HallusionBench without a judge): lower-case, the VQA
    punctuation processing, split on whitespace; "yes" among the words and not "no" -> yes, the reverse
    -> no; both or neither -> unparsed."""
    words = process_punctuation(output.lower()).split()
    has_yes, has_no = YES in words, NO in words
    if has_yes and not has_no:
        return Parsed(YES, "yes_word")
    if has_no and not has_yes:
        return Parsed(NO, "no_word")
    return Parsed(None, "unparsed")


def yes_no_contains(output: str) -> Parsed:
    """lmms-eval's rule-based HallusionBench variant: "yes" anywhere in the lower-cased reply -> yes,
    otherwise no (so "eyes" is yes and an empty reply is no: the rule never leaves a reply unparsed)."""
    if YES in output.lower():
        return Parsed(YES, "contains_yes")
    return Parsed(NO, "default_no")
