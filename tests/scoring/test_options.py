"""Option extraction: each chain on hand-worked cases (output, options, expected letter, rule, why)."""

from __future__ import annotations

import pytest

from evalkit.scoring.options import (
    EXACT_LETTER,
    FIRST_CHAR,
    GENERAL,
    MMMU,
    MMMU_LMMS,
    SQA_LLAVA,
    Chain,
    options_from,
    render_options,
)

ABCD = options_from(["a red apple", "a green pear", "blue sky", "none of these"])
CASES: list[tuple[Chain, str, str | None, str, str]] = [
    # GENERAL
    (GENERAL, "B", "B", "lone_letter", "a bare letter"),
    (GENERAL, " (C). ", "C", "lone_letter", "wrapped letter"),
    (GENERAL, "**D**", "D", "lone_letter", "markdown bold"),
    (GENERAL, "E", None, "unparsed", "E is no option here; nothing else matches"),
    (GENERAL, "B. a green pear", "B", "leading_letter", "letter then its text"),
    (GENERAL, "(A) because it is red", "A", "leading_letter", "bracketed opener"),
    (GENERAL, "C) blue sky", "C", "leading_letter", "closing bracket opener"),
    (GENERAL, "Answer: C", "C", "answer_phrase", "answer with a colon"),
    (GENERAL, "I think the answer is (D).", "D", "answer_phrase", "answer is (D)"),
    (GENERAL, "The answer is B, not C. The answer is B.", "B", "answer_phrase", "phrases agree"),
    (
        GENERAL,
        "The answer is B. Actually the answer is C",
        None,
        "unparsed",
        "phrases disagree; B and C both stand alone too",
    ),
    (GENERAL, "Looking closely, the correct option is C", "C", "lone_token", "lone letter at the end"),
    (
        GENERAL,
        "C is the one I would pick among these options here",
        None,
        "unparsed",
        "a lone letter far from the end is not trusted",
    ),
    (
        GENERAL,
        "A dog sits under the blue sky",
        "C",
        "option_text",
        "'A dog': the article, then option C's text",
    ),
    (GENERAL, "It shows a green pear.", "B", "option_text", "one option text inside"),
    (GENERAL, "a red apple or a green pear", None, "unparsed", "two option texts"),
    (GENERAL, "I cannot tell from the image.", None, "unparsed", "nothing to read: never a guess"),
    (GENERAL, "", None, "unparsed", "empty"),
    # EXACT_LETTER (LLaVA SEED): exact letter only
    (EXACT_LETTER, "A", "A", "exact_letter", "exact"),
    (EXACT_LETTER, "A.", None, "unparsed", "'A.' is wrong under LLaVA's SEED conversion"),
    (EXACT_LETTER, " B ", "B", "exact_letter", "stripped"),
    # FIRST_CHAR (lmms-eval SEED)
    (FIRST_CHAR, "b. a green pear", "B", "first_char", "first character, upper-cased"),
    (FIRST_CHAR, "  The answer", "T", "first_char", "whatever the first character is"),
    # SQA_LLAVA (LLaVA eval_science_qa)
    (SQA_LLAVA, "E", "E", "sqa_bare_letter", "any of A-E counts as an answer (then wrong here)"),
    (SQA_LLAVA, "B. a green pear", "B", "sqa_letter_dot", "letter, '. '"),
    (SQA_LLAVA, "B.a green pear", None, "unparsed", "no space after the dot"),
    (SQA_LLAVA, "Because ... The answer is C.", "C", "sqa_answer_is", "one match"),
    (SQA_LLAVA, "The answer is A. The answer is C.", None, "unparsed", "two matches: failed"),
    (SQA_LLAVA, "(B)", None, "unparsed", "brackets are no LLaVA ScienceQA form"),
    # MMMU official (no random fallback)
    (MMMU, "(B)", "B", "mmmu_official", "bracket pass"),
    (MMMU, "I choose (A) but maybe (C)", "C", "mmmu_official", "several brackets: the last mentioned"),
    (MMMU, "B.", "B", "mmmu_official", "trailing '.' stripped, then ' B '"),
    (MMMU, "The answer is D", "D", "mmmu_official", "' D ' as a word"),
    (MMMU, "It is clearly a picture of blue sky overall", "C", "mmmu_official", ">5 words: option text"),
    (MMMU, "blue sky", None, "unparsed", "option text only counts for replies over 5 words"),
    (MMMU, "D. none", None, "unparsed", "' D ' does not occur ('D.'), and 2 words skip the text pass"),
    (MMMU, "A, B", "B", "mmmu_official", "'A,' is not ' A '; ' B ' is"),
    (MMMU, "A or B", "B", "mmmu_official", "two spaced letters: the one mentioned last"),
    (MMMU_LMMS, "B.none", "B", "mmmu_lmms", "lmms-eval's 'X.' pass"),
    (MMMU, "B.none", None, "unparsed", "the official code has no 'X.' pass"),
]


@pytest.mark.parametrize(
    ("chain", "output", "letter", "rule", "why"), CASES, ids=[f"{c[0].name}:{c[1]!r}" for c in CASES]
)
def test_chains(chain: Chain, output: str, letter: str | None, rule: str, why: str) -> None:
    parsed = chain(output, ABCD)
    assert (parsed.label, parsed.rule) == (letter, rule), why


def test_render_options() -> None:
    assert render_options(options_from(["x", "y"])) == "\nA. x\nB. y"
    assert render_options(options_from(["x"]), "({letter}) {text}") == "\n(A) x"
