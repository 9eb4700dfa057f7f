"""Option extraction: each chain on hand-worked cases (output, options, expected letter, rule, why)."""

from __future__ import annotations

import pytest

from evalkit.scoring.options import (
    AI2D_LMMS,
    EXACT_LETTER,
    FIRST_CHAR,
    GENERAL,
    MMBENCH,
    MMMU,
    MMMU_LMMS,
    MMSTAR,
    SQA_LLAVA,
    SQA_LMMS,
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
    (GENERAL, "A is correct.", "A", "lone_token", "'A' as a letter, near the end"),
    (GENERAL, "Option A is correct", "A", "lone_token", "'A' after 'Option'"),
    (GENERAL, "I'd say A seems right", "A", "lone_token", "'A' before a verb is the letter"),
    (GENERAL, "A seems right to me", None, "unparsed", "the letter, but outside the last 4 tokens"),
    (GENERAL, "A plain, blue sky", "C", "option_text", "'A' before another lower-case word is the article"),
    (
        GENERAL,
        "A. red\nB. green\nThe answer is B.",
        "B",
        "answer_phrase",
        "an explicit answer beats the opener",
    ),
    (GENERAL, "A: red is wrong; the answer is C", "C", "answer_phrase", "likewise"),
    (GENERAL, "b", None, "unparsed", "lower-case letters are not read (as VLMEvalKit)"),
    (GENERAL, "答案是B", None, "unparsed", "Chinese answer forms are left to the judge matcher"),
    # GENERAL: a letter on its own first line, an explanation below
    (GENERAL, "B\n\nThere are two pears in it.", "B", "first_line_letter", "letter, blank line, text"),
    (GENERAL, "**C**\nThe sky is blue.", "C", "first_line_letter", "markdown bold on the first line"),
    (GENERAL, "[A]\nred, so A", "A", "first_line_letter", "bracketed first line"),
    (GENERAL, "B\nThe answer is C.", "C", "answer_phrase", "an explicit answer still beats the opener"),
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
    # SQA_LMMS (lmms-eval scienceqa sqa_process_results: strip; pred.lower() == target.lower(); else
    # pred[0].isupper() and pred[1] == "." -> pred[0]; else wrong)
    (SQA_LMMS, "b", "B", "any_case_letter", "lower-case letter: equal to the target once lower-cased"),
    (SQA_LMMS, " C\n", "C", "any_case_letter", "stripped first"),
    (SQA_LMMS, "E", "E", "any_case_letter", "a letter of no option is still an answer (then wrong)"),
    (SQA_LMMS, "B. a green pear", "B", "lmms_letter_dot", "letter, dot, text"),
    (SQA_LMMS, "B.a green pear", "B", "lmms_letter_dot", "no space needed after the dot, unlike LLaVA"),
    (SQA_LMMS, "B.", "B", "lmms_letter_dot", "'b.' != 'b', but 'B' then '.' reads B"),
    (SQA_LMMS, "b. a green pear", None, "unparsed", "lower-case letter with a dot: pred[0] is not upper"),
    (SQA_LMMS, "(B)", None, "unparsed", "brackets: no rule"),
    (SQA_LMMS, "The answer is B.", None, "unparsed", "'T' then 'h': no rule reads a sentence"),
    (SQA_LMMS, "1", None, "unparsed", "one character that is no letter"),
    (SQA_LMMS, "", None, "unparsed", "empty"),
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
    # AI2D_LMMS (lmms-eval ai2d: regex ^\s*([A-Z])\. else the raw reply; exact match ignoring case and
    # string.punctuation, whitespace kept)
    (AI2D_LMMS, "B", "B", "lmms_exact_letter", "a bare letter equals the target"),
    (AI2D_LMMS, "B. a green pear", "B", "lmms_letter_dot", "the filter's regex"),
    (AI2D_LMMS, "  C. blue sky", "C", "lmms_letter_dot", "the regex allows leading whitespace"),
    (AI2D_LMMS, "B.a green pear", "B", "lmms_letter_dot", "no space needed after the dot"),
    (AI2D_LMMS, "Z.", "Z", "lmms_letter_dot", "any capital is read (then wrong)"),
    (AI2D_LMMS, "b. a green pear", None, "unparsed", "regex is case-sensitive; 'b a green pear' != 'b'"),
    (AI2D_LMMS, "(B)", "B", "lmms_exact_letter", "punctuation removed: 'b' == 'b'"),
    (AI2D_LMMS, "b", "B", "lmms_exact_letter", "case ignored"),
    # the chain itself keeps whitespace; lmms-eval strips every reply before (Protocol.process)
    (AI2D_LMMS, " B", None, "unparsed", "unstripped: ' b' != 'b'"),
    (AI2D_LMMS, "B\n", None, "unparsed", "unstripped: a trailing newline stays"),
    (AI2D_LMMS, "The answer is B", None, "unparsed", "a sentence never equals a letter"),
    (AI2D_LMMS, "", None, "unparsed", "empty"),
    # MMSTAR (MMStar's rule, lmms-eval <= v0.7.1: lower, newlines to spaces, strip; right if p[0] == answer,
    # or p[0] == "(" and p[1] == answer, or p[:7] == "option " and p[7] == answer, or p[:14] == "the answer
    # is " and p[14] == answer)
    (MMSTAR, "B", "B", "mmstar_first_char", "first character"),
    (MMSTAR, " b) the pear\n", "B", "mmstar_first_char", "lower-cased and stripped first"),
    (MMSTAR, "\nB", "B", "mmstar_first_char", "newline becomes a space, then stripped"),
    (MMSTAR, "Dog", "D", "mmstar_first_char", "only the first character counts: 'd'"),
    (MMSTAR, "Answer: C", "A", "mmstar_first_char", "'a' of 'answer' is option A under this rule"),
    (MMSTAR, "(C) blue sky", "C", "mmstar_bracket", "character after '('"),
    (MMSTAR, "Option D", "D", "mmstar_option_word", "'option ' then the letter"),
    (MMSTAR, "The answer is A.", "A", "mmstar_answer_is", "'the answer is ' then the letter"),
    (MMSTAR, "the answer is (A)", None, "unparsed", "p[14] is '(': no rule"),
    (MMSTAR, "E", None, "unparsed", "E is no option (it can equal no answer)"),
    (MMSTAR, "(", None, "unparsed", "nothing after the bracket (lmms-eval's IndexError -> 0)"),
    (MMSTAR, "", None, "unparsed", "empty"),
]


# MMBENCH: VLMEvalKit's can_infer (98e3733f..c026693a), worked by hand from its code on these options
ANIMALS = options_from(["cat", "dog", "bird", "fish"])
MMBENCH_CASES: list[tuple[str, str | None, str, str]] = [
    ("B", "B", "vlmeval_option", "one letter among the words"),
    ("B.", "B", "vlmeval_option", "'.' becomes a space"),
    ("B\n\nThere are two dogs in the image.", "B", "vlmeval_option", "one letter anywhere among the words"),
    ("**B**", "B", "vlmeval_option", "'*' becomes a space"),
    ("[A]", "A", "vlmeval_option", "brackets become spaces"),
    ("(C)", "C", "vlmeval_option", "parentheses become spaces"),
    ("Answer: B", "B", "vlmeval_option", "':' becomes a space"),
    ("The answer is B", "B", "vlmeval_option", "one letter"),
    ("B) dog", "B", "vlmeval_option", "')' becomes a space"),
    ("Option B", "B", "vlmeval_option", "one letter"),
    ("A dog", "A", "vlmeval_option", "'A' counts as the letter (the article check needs $VERBOSE)"),
    ("A or B", None, "unparsed", "two letters; neither 'a or b' holds an option text"),
    ("b", None, "unparsed", "letters are case-sensitive; 'b' holds no option text"),
    ("The animal is a dog.", "B", "vlmeval_text", "lower-case 'a' is no letter; 'dog' is the one text"),
    ("The answer is dog", "B", "vlmeval_text", "no letter word; the one option text"),
    ("dogs and cats", None, "unparsed", "two option texts"),
    ("Cannot determine the answer", "Z", "vlmeval_option", "a refusal phrase: Z, wrong"),
    ("I cannot determine the answer", None, "unparsed", "the phrase is case-sensitive; no option text"),
    ("Z", "Z", "vlmeval_option", "a lone Z word and no letter: Z"),
    ("C\n", "C", "vlmeval_option", "split on any whitespace"),
    ("E", None, "unparsed", "E is no option here"),
    ("", None, "unparsed", "empty"),
]


@pytest.mark.parametrize(
    ("output", "letter", "rule", "why"), MMBENCH_CASES, ids=[repr(c[0]) for c in MMBENCH_CASES]
)
def test_mmbench_official_matching(output: str, letter: str | None, rule: str, why: str) -> None:
    parsed = MMBENCH(output, ANIMALS)
    assert (parsed.label, parsed.rule) == (letter, rule), why


@pytest.mark.parametrize(
    ("chain", "output", "letter", "rule", "why"), CASES, ids=[f"{c[0].name}:{c[1]!r}" for c in CASES]
)
def test_chains(chain: Chain, output: str, letter: str | None, rule: str, why: str) -> None:
    parsed = chain(output, ABCD)
    assert (parsed.label, parsed.rule) == (letter, rule), why


def test_render_options() -> None:
    assert render_options(options_from(["x", "y"])) == "\nA. x\nB. y"
    assert render_options(options_from(["x"]), "({letter}) {text}") == "\n(A) x"
