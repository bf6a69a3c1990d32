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
