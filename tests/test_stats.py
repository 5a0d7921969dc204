"""The experiment and holdout statistics against answers known independently."""

import math

import pytest
from hypothesis import given, settings, strategies as st

from saleor_flows.engine import stats


def beta_pdf(x, a, b):
    return math.exp((a - 1) * math.log(x) + (b - 1) * math.log1p(-x) - stats._log_beta(a, b))


def beta_cdf(x, a, b):
    """Integer-parameter Beta CDF as a binomial tail: P(X <= x) = P(Bin(a + b - 1, x) >= a)."""
    n = a + b - 1
    return sum(math.comb(n, j) * x**j * (1 - x) ** (n - j) for j in range(a, n + 1))


def numeric_prob_greater(a1, b1, a2, b2, steps=4000):
    """P(X > Y) = ∫ f_X(x) F_Y(x) dx by Simpson's rule: an independent check of the closed form."""
    h = 1 / steps
    total = 0.0
    for i in range(1, steps):
        x = i * h
        total += (4 if i % 2 else 2) * beta_pdf(x, a1, b1) * beta_cdf(x, a2, b2)
    return total * h / 3


@pytest.mark.parametrize("a1, b1, a2, b2, expected", [
    (1, 1, 1, 1, 1 / 2),
    (2, 1, 1, 1, 2 / 3),  # X has density 2x, Y uniform: ∫ 2x·x dx
    (1, 2, 1, 1, 1 / 3),
    (3, 1, 1, 3, 1 - 1 / 20),  # by hand: P(X < Y) = ∫ 3x² · (1 - x)³ ... = 1/20
])
def test_prob_greater_matches_hand_computed_cases(a1, b1, a2, b2, expected):
    assert stats.prob_greater(a1, b1, a2, b2) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("a1, b1, a2, b2", [(11, 91, 6, 96), (3, 8, 5, 4), (21, 30, 15, 33)])
def test_closed_form_agrees_with_numerical_integration_to_three_decimals(a1, b1, a2, b2):
    assert round(stats.prob_greater(a1, b1, a2, b2), 3) == round(numeric_prob_greater(a1, b1, a2, b2), 3)


def test_prob_best_two_variants():
    assert stats.prob_best([(50, 1000), (50, 1000)]) == pytest.approx([0.5, 0.5], abs=1e-9)
    clear = stats.prob_best([(50, 1000), (100, 1000)])
    assert clear[1] > 0.99 and sum(clear) == pytest.approx(1)


def test_prob_best_three_variants_by_seeded_monte_carlo():
    equal = stats.prob_best([(30, 300)] * 3)
    assert equal == stats.prob_best([(30, 300)] * 3)  # the same data, the same answer
    assert all(abs(p - 1 / 3) < 0.01 for p in equal)
    two_equal = stats.prob_best([(10, 100), (10, 100), (0, 100)])
    assert two_equal[2] < 0.001 and abs(two_equal[0] - 0.5) < 0.01
    # With a hopeless third arm, the Monte Carlo value of the first matches the exact pairwise one.
    exact = stats.prob_greater(1 + 40, 1 + 460, 1 + 30, 1 + 470)
    mc = stats.prob_best([(40, 500), (30, 500), (0, 500)])
    assert abs(mc[0] - exact) < 0.01


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 60), st.integers(60, 120), st.integers(0, 60), st.integers(60, 120))
def test_prob_best_of_two_is_symmetric(s1, n1, s2, n2):
    p = stats.prob_best([(s1, n1), (s2, n2)])
    q = stats.prob_best([(s2, n2), (s1, n1)])
    assert p[0] == pytest.approx(q[1], abs=1e-9)
    assert 0 <= p[0] <= 1


def test_wilson_and_newcombe_against_published_values():
    # Newcombe (1998), Statistics in Medicine 17:873, table II example (a): 56/70 against 48/80.
    low, high = stats.wilson(56, 70)  # by hand: (0.8 + z²/140 ± z·sqrt(0.16/70 + z²/19600)) / (1 + z²/70)
    assert (round(low, 4), round(high, 4)) == (0.6918, 0.8770)
    diff = stats.proportion_difference(56, 70, 48, 80)
    assert diff["difference"] == pytest.approx(0.2)
    assert (round(diff["low"], 4), round(diff["high"], 4)) == (0.0524, 0.3339)
    # Example (b): 9/10 against 3/10.
    diff = stats.proportion_difference(9, 10, 3, 10)
    assert (round(diff["low"], 4), round(diff["high"], 4)) == (0.1705, 0.8090)


def test_welch_mean_difference_on_a_constructed_dataset():
    treated = [0.0] * 6 + [10.0, 20.0, 30.0, 40.0]  # mean 10, sample variance 2000/9
    held = [0.0] * 8 + [10.0, 10.0]  # mean 2
    def sums(values):
        return len(values), sum(values), sum(v * v for v in values)
    result = stats.mean_difference(*sums(treated), *sums(held))
    var_t = sum((v - 10) ** 2 for v in treated) / 9
    var_h = sum((v - 2) ** 2 for v in held) / 9
    half = stats.Z95 * math.sqrt(var_t / 10 + var_h / 10)
    assert result["difference"] == pytest.approx(8)
    assert result["low"] == pytest.approx(8 - half) and result["high"] == pytest.approx(8 + half)
    assert round(half, 3) == 9.602  # 1.96 * sqrt(2000/90 + 160/90)


@pytest.mark.parametrize("a1, b1, a2, b2", [(31, 5, 21, 3), (900, 8100, 1000, 8000), (4000, 1200, 3950, 1250)])
def test_every_form_of_the_sum_gives_the_same_answer(a1, b1, a2, b2):
    """The four sums (over a1, a2, b1 or b2 terms) are the same probability."""
    by_a1 = stats._miller(a1, b1, a2, b2)
    assert 1 - stats._miller(a2, b2, a1, b1) == pytest.approx(by_a1, abs=1e-9)
    assert stats._miller(b2, a2, b1, a1) == pytest.approx(by_a1, abs=1e-9)
    assert stats.prob_greater(a1, b1, a2, b2) == pytest.approx(by_a1, abs=1e-9)


def test_the_normal_form_for_large_counts_agrees_with_the_exact_sum_to_three_decimals():
    for a1, b1, a2, b2 in [(5001, 95001, 5101, 94901), (20001, 80001, 20151, 79851), (15001, 15001, 15001, 15001)]:
        exact = stats._miller(min(a1, a2), *((b1, a2, b2) if a1 <= a2 else (b2, a1, b1)))
        exact = exact if a1 <= a2 else 1 - exact
        assert round(stats._normal_prob_greater(a1, b1, a2, b2), 3) == round(exact, 3)
    # Large on every side: the normal form is used, and fast.
    assert stats.prob_greater(300_001, 700_001, 150_001, 350_001) == pytest.approx(0.5, abs=0.01)
