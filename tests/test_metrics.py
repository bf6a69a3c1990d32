"""Metric functions on hand-worked examples, and `trigram` against the `ngram` package itself."""

import math
import random

import pytest

from textimg.eval import metrics

ngram = pytest.importorskip("ngram")


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("spa", "spam", 0.375),  # 3 shared of 5 + 6 - 3 = 8
        ("hello world", "helo world", 0.7857142857142857),  # 11 of 13 + 12 - 11 = 14
        ("HELLO", "hello", 0.0),  # case-sensitive
        ("", "", 1.0),  # both are "$$$$"
        ("", "abc", 0.0),
        ("ab", "ba", 0.0),
    ],
)
def test_trigram_similarity_hand_worked(a: str, b: str, expected: float) -> None:
    assert metrics.trigram_similarity(a, b) == pytest.approx(expected)


def test_trigram_strips_spaces_per_line_but_keeps_line_breaks() -> None:
    assert metrics.trigram("  hello \n world ", "hello\nworld") == 1.0
    assert metrics.trigram("hello\nworld", "hello world") < 1.0
    assert metrics.trigram("hello\tworld", "hello world") < 1.0  # only spaces are stripped


def _random_text(rng: random.Random) -> str:
    alphabet = "abcAB $\n\t"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))


def test_trigram_equals_ngram_package_on_random_strings() -> None:
    rng = random.Random(0)
    for _ in range(2000):
        gold, candidate = _random_text(rng), _random_text(rng)
        # Exactly the original's call: NGram([gold], N=3).search(candidate), 0.0 if no hit.
        hits = ngram.NGram([metrics.strip_line_spaces(gold)], N=3).search(
            metrics.strip_line_spaces(candidate)
        )
        expected = hits[0][1] if hits else 0.0
        assert metrics.trigram(gold, candidate) == pytest.approx(expected, abs=1e-12)
        assert metrics.trigram_similarity(gold, candidate) == pytest.approx(
            ngram.NGram.compare(gold, candidate), abs=1e-12
        )


def test_trigram_ci_ignores_case_and_whitespace_layout() -> None:
    assert metrics.trigram_ci("Hello\nWorld", "hello  world") == 1.0
    assert metrics.trigram("Hello\nWorld", "hello  world") < 0.5


def test_edit_distance_metrics() -> None:
    assert metrics.cer("hello", "helo") == pytest.approx(1 / 5)
    assert metrics.cer("ab", "abcdef") == pytest.approx(2.0)  # insertions can exceed 1
    assert metrics.cer("", "") == 0.0
    assert metrics.cer("", "x") == 1.0
    assert metrics.ned("ab", "abcdef") == pytest.approx(4 / 6)
    assert metrics.ned("", "") == 0.0
    assert metrics.ned("abc", "") == 1.0


def test_exact_variants() -> None:
    assert metrics.exact(" Hi \nthere", "Hi\nthere") == 1.0
    assert metrics.exact("Hi", "hi") == 0.0
    assert metrics.exact_ci("Hi\nthere", "hi there") == 1.0
    assert metrics.exact_ci("Hi", "Ho") == 0.0


def test_word_accuracy_is_multiset_recall() -> None:
    assert metrics.word_accuracy("the cat the dog", "dog the cat") == pytest.approx(3 / 4)
    assert metrics.word_accuracy("a b", "") == 0.0
    assert metrics.word_accuracy("", "") == 1.0
    assert metrics.word_accuracy("", "noise") == 0.0


def test_anytext_preset_pairs_lines_in_order() -> None:
    prompt, transcript = "OPEN\nDaily 9-5", "OPEN\nDaily 9-6"
    assert metrics.anytext_sentence_accuracy(prompt, transcript) == 0.5
    assert metrics.anytext_ned(prompt, transcript) == pytest.approx((1 + (1 - 1 / 9)) / 2)
    assert metrics.anytext_sentence_accuracy(prompt, "OPEN") == 0.5  # missing line is empty
    rng = random.Random(1)
    for _ in range(200):
        a, b = _random_text(rng), _random_text(rng)
        assert metrics.anytext_ned(a, b) >= metrics.anytext_sentence_accuracy(a, b)


def test_glyphcontrol_preset() -> None:
    assert metrics.glyph_accuracy("Coffee", "Best\nCoffee here") == 1.0
    assert metrics.glyph_accuracy("Coffee", "COFFEE") == 0.0
    assert metrics.glyph_accuracy_ci("Coffee", "COFFEE") == 1.0
    assert metrics.glyph_levenshtein("Coffee", "Cofee shop") == 1.0
    assert math.isnan(metrics.glyph_levenshtein("Coffee", ""))


def test_cvtg_preset_worked_example() -> None:
    # TextCrafter's evaluation: prompt words grand/opening/sale, OCR words grand/openng/sale/today.
    prompt, transcript = "Grand Opening Sale", "GRAND OPENNG\nsale today"
    assert metrics.cvtg_word_accuracy(prompt, transcript) == pytest.approx(2 / 3)
    # grand and sale match exactly; opening's closest OCR word is openng, one deletion of 7.
    expected = (1 + (1 - 1 / (7 + 1e-5)) + 1) / 3
    assert metrics.cvtg_ned(prompt, transcript) == pytest.approx(expected, abs=1e-12)
    assert metrics.cvtg_word_accuracy("sale sale", "sale") == 1.0  # membership, not multiset
    assert metrics.cvtg_word_accuracy("hello", "") == 0.0
    assert metrics.cvtg_ned("hello", "") == pytest.approx(0.0, abs=1e-5)  # vs one empty word
    assert math.isnan(metrics.cvtg_word_accuracy(" ", "noise"))
    assert math.isnan(metrics.cvtg_ned("", ""))


def test_lex_bench_preset_on_its_own_examples() -> None:
    # lex_bench_easy.json, prompt 0000: texts Communicate, Execute.
    prompt = "Communicate\nExecute"
    assert metrics.lex_pned(prompt, "COMMUNICAte\nExecute") == 0.0  # compared lowercased
    assert metrics.lex_recall(prompt, "COMMUNICAte\nExecute") == 1.0
    # Its enhanced image read "communcate" (1 deletion of 11) and "LEAUR" (execute -> leaur:
    # e->l, drop x, c->a, t->r, drop the last e: 5 edits of 7); only the first is within 0.3.
    assert metrics.lex_pned(prompt, "communcate\nLEAUR") == pytest.approx(1 / 11 + 5 / 7)
    assert metrics.lex_recall(prompt, "communcate\nLEAUR") == 0.5
    # Prompt 0001: texts AREA, PEOPLE, one box "AHOPCE": people pairs with it (3 of 6: p->a,
    # e->h, l->c; area would cost 5 of 6) and area is left unpaired (+1).
    assert metrics.lex_pned("AREA\nPEOPLE", "AHOPCE") == pytest.approx(3 / 6 + 1)
    assert metrics.lex_recall("AREA\nPEOPLE", "AHOPCE") == 0.0
    assert metrics.lex_pned("AREA\nPEOPLE", "") == 2.0  # one empty box: 1 + 1 unpaired
    assert math.isnan(metrics.lex_pned("", "x")) and math.isnan(metrics.lex_recall("", ""))


def test_lex_recall_uses_each_box_once() -> None:
    assert metrics.lex_recall("sale\nsale", "sale") == 0.5
    assert metrics.lex_recall("sale\nsale", "sale\nsal") == 1.0  # 1 of 4 <= 0.3


def test_score_pair_has_every_metric() -> None:
    scores = metrics.score_pair("hello", "hello")
    assert set(scores) == set(metrics.METRICS)
    for name, value in scores.items():
        assert value == (0.0 if name in metrics.LOWER_IS_BETTER else 1.0), name


def test_mean_ci_brackets_the_mean_and_skips_nan() -> None:
    mean, low, high = metrics.mean_ci([0.0, 1.0] * 50 + [math.nan])
    assert mean == 0.5
    assert 0.35 < low < 0.5 < high < 0.65
    assert metrics.mean_ci([0.7, 0.7]) == (0.7, 0.7, 0.7)
    assert all(math.isnan(v) for v in metrics.mean_ci([math.nan]))


def test_best_of_k_and_exact_share() -> None:
    assert metrics.best_of_k([[0.2, 0.9], [0.5]], "trigram") == [0.9, 0.5]
    assert metrics.best_of_k([[0.2, 0.9], [math.nan]], "cer")[0] == 0.2
    assert math.isnan(metrics.best_of_k([[math.nan]], "cer")[0])
    assert metrics.exact_share([[0.0, 1.0], [0.0, 0.0]]) == 0.5
