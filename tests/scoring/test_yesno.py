"""Yes/no parsers against their published rules; each row: output, expected label, rule, why."""

from __future__ import annotations

import pytest

from evalkit.scoring.yesno import (
    yes_no_contains,
    yes_no_exact,
    yes_no_negation,
    yes_no_prefix,
    yes_no_prefix_lenient,
    yes_no_words,
)

# MME eval_tool/calculation.py: lower(); exact yes/no; else "yes" in first 4 chars; else "no" in them.
MME_OFFICIAL = [
    ("Yes", "yes", "exact", "lower-cased exact"),
    ("No", "no", "exact", "lower-cased exact"),
    ("Yes, there is", "yes", "prefix4", "'yes,' holds yes"),
    ("There is no dog", None, "unparsed", "'ther' holds neither: unparsed, counted wrong"),
    ("Not at all", "no", "prefix4", "'not ' holds no"),
    ("None", "no", "prefix4", "'none' holds no"),
    ("  No", "no", "prefix4", "no strip in the tool: '  no' still holds no"),
    ("   yes", None, "unparsed", "'   y' - three leading spaces push yes out of the window"),
    ("yes\n", "yes", "prefix4", "the tool reads lines with their newline"),
    ("Snow", "no", "prefix4", "'snow' contains 'no': the official rule, quirks included"),
    ("eyes", "yes", "prefix4", "'eyes' contains 'yes'"),
    ("yesno", "yes", "prefix4", "yes is tested before no"),
    ("y", None, "unparsed", "no single-letter rule in the official tool"),
    ("", None, "unparsed", "empty output"),
    ("The answer is yes", None, "unparsed", "'the ' holds neither"),
    ("Unknown", None, "unparsed", "'unkn' has no 'no'"),
]

# lmms-eval MME: lower().strip().replace(".", ""); exact; lone y/n; else the 4-char prefix rule.
MME_LMMS = [
    ("Yes.", "yes", "exact", "dots removed"),
    ("  yes", "yes", "exact", "stripped first"),
    ("y", "yes", "letter", "lone y"),
    ("N", "no", "letter", "lone N, lower-cased"),
    ("x", None, "unparsed", "other single letter"),
    ("N.o.", "no", "exact", "every dot removed"),
    ("No, there is not.", "no", "prefix4", "'no, '"),
    ("There is no dog", None, "unparsed", "'ther'"),
]

# LLaVA eval_pope.py: text before first '.', drop ',', split on ' '; a word in {No, not, no} -> no; else yes.
POPE_LLAVA = [
    ("Yes, there is a dog.", "yes", "default_yes", "no negation word"),
    ("No", "no", "negation_word", "'No'"),
    ("There is no dog in the image.", "no", "negation_word", "'no' as a word"),
    ("Not at all", "yes", "default_yes", "'Not' (capital) is not in the word list"),
    ("None", "yes", "default_yes", "'None' is not a negation word"),
    ("Yes. But no.", "yes", "default_yes", "only the first sentence counts"),
    ("No, there is not.", "no", "negation_word", "comma removed, then 'No'"),
    ("  No", "no", "negation_word", "split(' ') keeps the word after empty strings"),
    ("NO", "yes", "default_yes", "case-sensitive list"),
    ("The image does not contain a dog", "no", "negation_word", "'not'"),
    ("cannot", "yes", "default_yes", "'cannot' is one word"),
    ("No\nThere is", "yes", "default_yes", "split on spaces only: 'No\\nThere' is one word"),
    ("", "yes", "default_yes", "an empty reply is yes under this rule"),
]

# lmms-eval POPE: lower().strip() must be exactly yes or no.
POPE_LMMS = [
    ("Yes", "yes", "exact", "exact"),
    (" no \n", "no", "exact", "stripped"),
    ("NO", "no", "exact", "lower-cased"),
    ("Yes.", None, "unparsed", "the dot makes it no match"),
    ("yes, there is", None, "unparsed", "extra words"),
]

# VLMEvalKit YOrN_Extraction: lower(); VQA process_punctuation; split(); a lone yes or a lone no.
WORDS = [
    ("Yes", "yes", "yes_word", "lower-cased word"),
    ("No.", "no", "no_word", "the period is removed"),
    ("Yes, the right circle is larger.", "yes", "yes_word", "', ' touches a space: deleted, then 'yes'"),
    ("YES!", "yes", "yes_word", "'!' touches no space: a space"),
    ("(Yes)", "yes", "yes_word", "brackets become spaces"),
    ("There is no yellow line", "no", "no_word", "'no' anywhere among the words"),
    ("yes/no", None, "unparsed", "'/' becomes a space: both words"),
    ("Yes.\nNo.", None, "unparsed", "both words, on two lines"),
    ("Not at all", None, "unparsed", "'not' is not the word 'no'"),
    ("eyes", None, "unparsed", "'eyes' is not the word 'yes'"),
    ("**Yes**", None, "unparsed", "'*' is not in the VQA punctuation list: the word is '**yes**'"),
    ("Yes:", None, "unparsed", "nor is ':'"),
    ("", None, "unparsed", "empty reply"),
]

# lmms-eval HallusionBench (rule-based aggregation): "yes" in the lower-cased reply -> yes, else no.
CONTAINS = [
    ("Yes", "yes", "contains_yes", "yes"),
    ("The answer is YES.", "yes", "contains_yes", "lower-cased first"),
    ("No, yes", "yes", "contains_yes", "yes anywhere wins over no"),
    ("I see two eyes", "yes", "contains_yes", "'eyes' contains yes: the published rule, quirk included"),
    ("No", "no", "default_no", "no yes"),
    ("Y", "no", "default_no", "a bare letter is no"),
    ("", "no", "default_no", "an empty reply is no: never unparsed"),
]


def _ids(rows: list[tuple[str, str | None, str, str]]) -> list[str]:
    return [f"{r[0]!r}: {r[3]}" for r in rows]


@pytest.mark.parametrize(("output", "label", "rule", "why"), MME_OFFICIAL, ids=_ids(MME_OFFICIAL))
def test_mme_official(output: str, label: str | None, rule: str, why: str) -> None:
    parsed = yes_no_prefix(output)
    assert (parsed.label, parsed.rule) == (label, rule), why


@pytest.mark.parametrize(("output", "label", "rule", "why"), MME_LMMS, ids=_ids(MME_LMMS))
def test_mme_lmms_eval(output: str, label: str | None, rule: str, why: str) -> None:
    parsed = yes_no_prefix_lenient(output)
    assert (parsed.label, parsed.rule) == (label, rule), why


@pytest.mark.parametrize(("output", "label", "rule", "why"), POPE_LLAVA, ids=_ids(POPE_LLAVA))
def test_pope_llava(output: str, label: str | None, rule: str, why: str) -> None:
    parsed = yes_no_negation(output)
    assert (parsed.label, parsed.rule) == (label, rule), why


@pytest.mark.parametrize(("output", "label", "rule", "why"), POPE_LMMS, ids=_ids(POPE_LMMS))
def test_pope_lmms_eval(output: str, label: str | None, rule: str, why: str) -> None:
    parsed = yes_no_exact(output)
    assert (parsed.label, parsed.rule) == (label, rule), why


@pytest.mark.parametrize(("output", "label", "rule", "why"), WORDS, ids=_ids(WORDS))
def test_yes_no_words(output: str, label: str | None, rule: str, why: str) -> None:
    parsed = yes_no_words(output)
    assert (parsed.label, parsed.rule) == (label, rule), why


@pytest.mark.parametrize(("output", "label", "rule", "why"), CONTAINS, ids=_ids(CONTAINS))
def test_yes_no_contains(output: str, label: str | None, rule: str, why: str) -> None:
    parsed = yes_no_contains(output)
    assert (parsed.label, parsed.rule) == (label, rule), why
