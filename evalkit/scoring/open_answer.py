"""Open-answer scoring as the official MMMU evaluation does it (`eval/eval_utils.py`).

A reply is cut to its key parts (the text after the last indicator word such as "is " or "therefore "),
numbers are pulled out of those parts, and every candidate is normalised: numbers become floats rounded
to 2 decimals, text is lower-cased. A gold answer matches a text candidate when it is a substring of it,
and a number candidate when it is the same float. Candidates keep first-seen order (the official code
takes a `set`, whose order varies between runs; only the order changes, not the verdict).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence

from evalkit.scoring.types import Scored

Candidate = str | float

INDICATORS = ("could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result ")
TRIVIAL = (":", ",", ".", "!", "?", ";", "'")
# The official split also has `\.\s(?=[A-Z])`, which never fires: the reply is lower-cased first.
_SPLIT = re.compile(r"\.\s(?=[A-Z])|\n")
_COMMAS = re.compile(r"-?\b\d{1,3}(?:,\d{3})+\b")
_SCIENTIFIC = re.compile(r"-?\d+(?:\.\d+)?[eE][+-]?\d+")
_SIMPLE = re.compile(r"-?(?:\d+\.\d+|\.\d+|\d+\b)(?![eE][+-]?\d+)(?![,\d])")


def extract_numbers(text: str) -> list[str]:
    """Every number in the text as written: with thousands commas, then scientific, then plain ones
    (the three patterns overlap: "1,000" also yields a plain "000")."""
    return _COMMAS.findall(text) + _SCIENTIFIC.findall(text) + _SIMPLE.findall(text)


def is_number(text: str) -> bool:
    """Python's float() accepts it once commas are removed."""
    try:
        float(text.replace(",", ""))
    except ValueError:
        return False
    return True


def normalize_str(text: str) -> list[Candidate]:
    """A number -> [its float rounded to 2 decimals]; text -> [lower-cased]; one character c -> [" c", "c "]
    (so that a one-letter answer only matches as a word edge, not inside any word)."""
    text = text.strip()
    if is_number(text):
        return [round(float(text.replace(",", "")), 2)]
    text = text.lower()
    return [" " + text, text + " "] if len(text) == 1 else [text]


def key_responses(response: str) -> list[str]:
    """The parts of a reply likely to hold the answer: per line, the shortest text after the last
    occurrence of any indicator ("=" too on the last line), unless it is a lone punctuation mark; the
    whole lower-cased reply when no line has one."""
    text = response.strip().strip(".").lower()
    lines = _SPLIT.split(text)
    found: list[str] = []
    for index, line in enumerate(lines):
        indicators = (*INDICATORS, "=") if index == len(lines) - 1 else INDICATORS
        shortest: str | None = None
        for indicator in indicators:
            if indicator in line:
                tail = line.split(indicator)[-1].strip()
                if not shortest or len(tail) < len(shortest):  # an empty tail is replaced, as officially
                    shortest = tail
        if shortest and shortest.strip() not in TRIVIAL:
            found.append(shortest)
    return found or [text]


def parse_open_response(response: str) -> list[Candidate]:
    """Official parse_open_response: the key responses and the numbers in them, normalised, without
    duplicates. Empty text candidates are dropped, so an empty reply has none (and is unparsed)."""
    keys = key_responses(response)
    raw = keys + [n for key in keys for n in extract_numbers(key)]
    normalised = [c for r in raw for c in normalize_str(r)]
    return [c for c in dict.fromkeys(normalised) if c != ""]


def gold_candidates(golds: Sequence[str]) -> list[Candidate]:
    """The gold answers normalised like predictions (a question may accept several answers)."""
    return [c for gold in golds for c in normalize_str(gold)]


def gold_answers(answer: str) -> list[str]:
    """An open question's accepted answers as the official answer file holds them: the items of a list of
    strings written as a string ("['24/7', '3.429']"), else the answer itself (an interval such as "[1, 2]"
    stays one answer)."""
    text = answer.strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return [answer]
        if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
            return value
    return [answer]


def eval_open(golds: Sequence[str], candidates: Sequence[Candidate]) -> Candidate | None:
    """Official eval_open: the first candidate that matches - a text candidate containing a text gold, or
    a number candidate equal to a number gold - or None."""
    norm = gold_candidates(golds)
    for candidate in candidates:
        if isinstance(candidate, str):
            if any(isinstance(g, str) and g in candidate for g in norm):
                return candidate
        elif candidate in norm:
            return candidate
    return None


def _show(candidate: Candidate) -> str:
    return repr(candidate) if isinstance(candidate, float) else candidate


def open_match(output: str, golds: Sequence[str]) -> Scored:
    """Score an open reply: the matched candidate as the answer ("open_number" / "open_text" by its kind);
    when none matches, all candidates joined with " | " (rule by whether any was a number); no
    candidate at all is unparsed."""
    candidates = parse_open_response(output)
    if not candidates:
        return Scored(None, 0.0, "unparsed")
    matched = eval_open(golds, candidates)
    if matched is not None:
        return Scored(_show(matched), 1.0, "open_number" if isinstance(matched, float) else "open_text")
    numeric = any(isinstance(c, float) for c in candidates)
    return Scored(" | ".join(map(_show, candidates)), 0.0, "open_number" if numeric else "open_text")
