"""Multiple-choice answer extraction: the one option parser, as named steps composed into rule chains.

A step looks at the model's output and the options ({"A": "text", ...}) and returns a letter or None.
A chain tries its steps in order; the first letter wins and the step's name is recorded, so every
prediction says which rule decided it. Nothing is guessed: when no step applies the output is unparsed
(the judge matcher, when one is configured, is a later addition). Chains:

- `GENERAL`: lone letter, "Answer: B" / "The answer is B" (an explicit answer beats an opening letter), a
  first line that is a lone letter ("B\n\nThere are two dogs", "**B**\n..."), leading "B." / "(B)" / "B)",
  a letter standing alone among the last tokens, a unique option text as whole words.
- `MMBENCH`: MMBench's official matching, VLMEvalKit's `can_infer` as the MMBench server and the published
  MMBench numbers used it (`vlmeval/utils/matching_util.py`, unchanged from 98e3733f, 2024-02, to c026693a,
  2025-08): the marks `.()[],:;!*#{}` become spaces, the reply is split on whitespace, and exactly one option
  letter among the words is the answer ("B\n\nThere are two dogs" is B, "A or B" is nothing); a refusal
  phrase or a lone "Z" word is the answer Z (wrong); else exactly one option text contained in the
  lower-cased reply. (VLMEvalKit has since required the letter among the last 4 words.)
- `EXACT_LETTER`: the stripped output is exactly the letter (LLaVA's SEED-Bench conversion: "A." is wrong).
- `FIRST_CHAR`: the first character of the stripped output, upper-cased (lmms-eval SEED-Bench).
- `SQA_LLAVA`: LLaVA eval_science_qa.py - bare letter; "B. ..." ; exactly one "The answer is X." match.
- `SQA_LMMS`: lmms-eval ScienceQA - the stripped reply is one letter in either case, or opens with "B."
  (A-Z then a dot, no space needed; lmms-eval's `isupper()` also takes non-ASCII capitals, never right).
- `MMMU`: the official MMMU parse_multi_choice_response (without its random fallback).
- `MMMU_LMMS`: lmms-eval's variant of it (its "X " and "X." passes).
- `AI2D_LMMS`: lmms-eval's AI2D filter + exact match: a leading "B." gives its letter, else the reply must
  be one letter once punctuation is removed (case ignored).

The steps see the reply as the protocol processed it: both protocols strip every reply first (LLaVA's
loader strips the decoded text; lmms-eval 0.7.3 strips each reply before `process_results`), so " B\n" is
"B" everywhere.
- `MMSTAR`: MMStar's own rule (lmms-eval up to v0.7.1): the lower-cased, stripped reply's first character,
  or the letter after "(", "option " or "the answer is " at its start.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from evalkit.scoring.types import Parsed, Scored

Options = Mapping[str, str]  # letter -> option text, in letter order
Step = Callable[[str, Options], str | None]

LETTERS = string.ascii_uppercase


def options_from(texts: Sequence[str]) -> dict[str, str]:
    """{"A": first, "B": second, ...}"""
    return {LETTERS[i]: str(t) for i, t in enumerate(texts)}


def render_options(options: Options, style: str = "{letter}. {text}") -> str:
    """Options one per line ("A. text"), each line preceded by a newline."""
    return "".join("\n" + style.format(letter=k, text=v) for k, v in options.items())


# --- steps -------------------------------------------------------------------------------------------


def lone_letter(output: str, options: Options) -> str | None:
    """The whole output is one option letter, possibly wrapped: "B", "B.", "(B)", "B)", "**B**", "[B]"."""
    m = re.fullmatch(r"[\s(\[*]*([A-Z])[\s)\].:*]*", output)
    return m.group(1) if m and m.group(1) in options else None


def first_line_letter(output: str, options: Options) -> str | None:
    """The first line is one option letter, possibly wrapped, and an explanation follows on later lines:
    "B\n\nThere are two dogs.", "**B**\nbecause ...", "(C)\n..."."""
    first, newline, _ = output.strip().partition("\n")
    return lone_letter(first, options) if newline else None


def leading_letter(output: str, options: Options) -> str | None:
    """The output opens with a marked letter and goes on: "B. text", "(B) text", "B) text", "B: text"."""
    m = re.match(r"\s*(?:\(([A-Z])\)|\[([A-Z])\]|([A-Z])[.):])(?:\s|$)", output)
    letter = m and (m.group(1) or m.group(2) or m.group(3))
    return letter if letter in options else None


_ANSWER_PHRASE = re.compile(r"\b[Aa]nswer(?:\s+is)?\s*[:：]?\s*[(\[*]*([A-Z])(?![A-Za-z])")


def answer_phrase(output: str, options: Options) -> str | None:
    """ "Answer: B", "The answer is B", "the correct answer is (B)" - only when all such phrases agree."""
    found = {m for m in _ANSWER_PHRASE.findall(output) if m in options}
    return found.pop() if len(found) == 1 else None


_SEPARATORS = str.maketrans({c: " " for c in ".()[],:;!*#{}\"'?"})
LAST_TOKENS = 4


# After "A", these words make it the letter ("A is correct"); any other lower-case word makes it the article.
LETTER_VERBS = frozenset("is was seems seem would should matches fits corresponds looks appears".split())


def lone_token(output: str, options: Options) -> str | None:
    """Exactly one option letter stands alone as a token, and it is among the last few tokens ("... so the
    correct option is C", "A is correct."). "A" followed by a lower-case word other than a verb such as
    "is" is the article ("A plain, blue field"), not a letter."""
    words = output.translate(_SEPARATORS).split()
    tokens = [w for i, w in enumerate(words) if not _article(words, i)]
    found = {t for t in tokens if t in options}
    if len(found) != 1:
        return None
    letter = found.pop()
    return letter if letter in tokens[-LAST_TOKENS:] else None


def _article(words: list[str], i: int) -> bool:
    following = words[i + 1] if i + 1 < len(words) else ""
    return words[i] == "A" and following[:1].islower() and following not in LETTER_VERBS


def option_text(output: str, options: Options) -> str | None:
    """Exactly one option's text appears in the output (case-insensitive), and the output is not a long
    ramble (at most twice the options' total length) where any text could appear by chance."""
    text = output.lower()
    if len(text) > 2 * sum(len(v) for v in options.values()):
        return None
    found = [k for k, v in options.items() if v.strip() and re.search(_whole(v.strip().lower()), text)]
    return found[0] if len(found) == 1 else None


def _whole(text: str) -> str:
    """A pattern for `text` as whole words: "no" is not found in "not sure" or "none"."""
    return r"(?<!\w)" + re.escape(text) + r"(?!\w)"


VLMEVAL_MARKS = str.maketrans({c: " " for c in ".()[],:;!*#{}"})
VLMEVAL_REFUSALS = (
    "Sorry, I can't help with images of people yet.",
    "I can't process this file.",
    "I'm sorry, but without the image provided",
    "Cannot determine the answer",
)
REFUSED = "Z"  # VLMEvalKit's answer for a refusal: never an option, so always wrong


def vlmeval_option(output: str, options: Options) -> str | None:
    """VLMEvalKit `can_infer_option`: a refusal phrase -> Z; else with `.()[],:;!*#{}` as spaces and the
    reply split on whitespace, the one option letter among the words (case-sensitive; two different
    letters -> none), or Z when no letter but a lone "Z" word is there."""
    if "Failed to obtain answer via API" in output:
        return None
    if any(refusal in output for refusal in VLMEVAL_REFUSALS):
        return REFUSED
    words = output.translate(VLMEVAL_MARKS).split()
    found = [letter for letter in options if letter in words]
    if len(found) == 1:
        return found[0]
    return REFUSED if not found and REFUSED in words else None


def vlmeval_text(output: str, options: Options) -> str | None:
    """VLMEvalKit `can_infer_text`: exactly one option's lower-cased text is a substring of the lower-cased
    reply (no word boundaries, no length limit)."""
    text = output.lower()
    found = [letter for letter, value in options.items() if str(value).lower() in text]
    return found[0] if len(found) == 1 else None


def vlmeval_open(output: str, gold: str) -> Scored:
    """VLMEvalKit's MMMU open question (`MMMU_preproc`): option A is the gold text, B "Other Answers"; the
    reply is right when can_infer reads A - a lone "A" word, or the gold text inside it ("3" is in "13")."""
    parsed = MMBENCH(output, {"A": gold, "B": "Other Answers"})
    rule = parsed.rule if parsed.label is not None else "unparsed"
    return Scored(gold if parsed.label == "A" else parsed.label, float(parsed.label == "A"), rule)


def exact_letter(output: str, options: Options) -> str | None:
    """The stripped output is exactly a letter (of any option or not: a letter is an answer)."""
    text = output.strip()
    return text if len(text) == 1 and text in LETTERS else None


def first_char(output: str, options: Options) -> str | None:
    """The first character of the stripped output, upper-cased (lmms-eval's SEED-Bench rule)."""
    text = output.strip()
    return text[0].upper() if text else None


SQA_LETTERS = "ABCDE"  # eval_science_qa.py checks replies against these, whatever the question's options


def sqa_bare_letter(output: str, options: Options) -> str | None:
    """LLaVA ScienceQA: the reply is one of A-E."""
    return output if output in tuple(SQA_LETTERS) else None


def sqa_letter_dot(output: str, options: Options) -> str | None:
    """LLaVA ScienceQA: "B. text" - one of A-E followed by '. '."""
    return output[0] if len(output) >= 3 and output[0] in SQA_LETTERS and output[1:3] == ". " else None


_SQA_ANSWER_IS = re.compile(r"The answer is ([A-Z]).")


def sqa_answer_is(output: str, options: Options) -> str | None:
    """LLaVA ScienceQA: exactly one match of `The answer is ([A-Z]).` (the letter may be no option)."""
    found = _SQA_ANSWER_IS.findall(output)
    return found[0] if len(found) == 1 else None


def any_case_letter(output: str, options: Options) -> str | None:
    """The stripped output is one ASCII letter in either case, upper-cased ("b" -> B; lmms-eval ScienceQA's
    `pred.lower() == target.lower()`)."""
    text = output.strip()
    return text.upper() if len(text) == 1 and text in string.ascii_letters else None


def _mmmu(output: str, options: Options, passes: tuple[str, ...]) -> str | None:
    """MMMU's candidate search: bracketed letters, then spaced letters, then (for replies of more than
    5 words) option texts; several candidates resolve to the one mentioned last."""
    resp = output
    for char in (",", ".", "!", "?", ";", ":", "'"):
        resp = resp.strip(char)
    resp = " " + resp + " "
    candidates = [k for k in options if f"({k})" in resp]
    where: Callable[[str], int] = lambda k: resp.rfind(f"({k})")  # noqa: E731
    for form in passes:
        if not candidates:
            candidates = [k for k in options if form.format(k) in resp]
            where = lambda k: resp.rfind(f" {k} ")  # noqa: E731  (MMMU locates letters as " X ")
    if not candidates and len(resp.split()) > 5:
        lowered = resp.lower()
        candidates = [k for k, v in options.items() if v.lower() in lowered]
        where = lambda k: lowered.rfind(options[k].lower())  # noqa: E731
    if not candidates:
        return None
    if len(candidates) == 1:
        return candidates[0]
    positions = [where(k) for k in candidates]
    return candidates[positions.index(max(positions))]  # ties: the earliest letter, as argmax does


def mmmu_official(output: str, options: Options) -> str | None:
    return _mmmu(output, options, (" {} ",))


def mmmu_lmms(output: str, options: Options) -> str | None:
    return _mmmu(output, options, ("{} ", "{}."))


def lmms_letter_dot(output: str, options: Options) -> str | None:
    """lmms-eval AI2D filter: an upper-case letter and "." at the start (after whitespace) give the letter."""
    m = re.match(r"\s*([A-Z])\.", output)
    return m.group(1) if m else None


_PUNCTUATION = str.maketrans("", "", string.punctuation)


def lmms_exact_letter(output: str, options: Options) -> str | None:
    """lmms-eval exact_match(ignore_case, ignore_punctuation) against a letter: the reply without ASCII
    punctuation must be one letter ("(b)" -> B); whitespace is not removed, so " B" and "B" + newline fail."""
    text = output.lower().translate(_PUNCTUATION)
    return text.upper() if len(text) == 1 and text in string.ascii_lowercase else None


def _mmstar_text(output: str) -> str:
    return output.lower().replace("\n", " ").strip()


def _mmstar_letter(char: str, options: Options) -> str | None:
    return char.upper() if char and char.upper() in options else None


def mmstar_first_char(output: str, options: Options) -> str | None:
    """MMStar: the first character of the lower-cased, stripped reply, when it is an option letter."""
    return _mmstar_letter(_mmstar_text(output)[:1], options)


def mmstar_bracket(output: str, options: Options) -> str | None:
    """MMStar: "(b..." - the character after an opening bracket."""
    text = _mmstar_text(output)
    return _mmstar_letter(text[1:2], options) if text.startswith("(") else None


def mmstar_option_word(output: str, options: Options) -> str | None:
    """MMStar: "option b..." - the character after a leading "option "."""
    text = _mmstar_text(output)
    return _mmstar_letter(text[7:8], options) if text.startswith("option ") else None


def mmstar_answer_is(output: str, options: Options) -> str | None:
    """MMStar: "the answer is b..." - the character after a leading "the answer is "."""
    text = _mmstar_text(output)
    return _mmstar_letter(text[14:15], options) if text.startswith("the answer is ") else None


# --- chains ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chain:
    name: str
    steps: tuple[Step, ...]

    def __call__(self, output: str, options: Options) -> Parsed:
        for step in self.steps:
            letter = step(output, options)
            if letter is not None:
                return Parsed(letter, step.__name__)
        return Parsed(None, "unparsed")


GENERAL = Chain(
    "general", (lone_letter, answer_phrase, first_line_letter, leading_letter, lone_token, option_text)
)
MMBENCH = Chain("mmbench", (vlmeval_option, vlmeval_text))
EXACT_LETTER = Chain("exact_letter", (exact_letter,))
FIRST_CHAR = Chain("first_char", (first_char,))
SQA_LLAVA = Chain("sqa_llava", (sqa_bare_letter, sqa_letter_dot, sqa_answer_is))
SQA_LMMS = Chain("sqa_lmms", (any_case_letter, lmms_letter_dot))
MMMU = Chain("mmmu", (mmmu_official,))
MMMU_LMMS = Chain("mmmu_lmms", (mmmu_lmms,))
AI2D_LMMS = Chain("ai2d_lmms", (lmms_letter_dot, lmms_exact_letter))
MMSTAR = Chain("mmstar", (mmstar_first_char, mmstar_bracket, mmstar_option_word, mmstar_answer_is))
