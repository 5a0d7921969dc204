"""The statistics behind experiment and holdout reports, in plain Python (no numpy needed).

* ``prob_best``: each variant's rate has a Beta(1 + successes, 1 + failures)
  posterior (a uniform Beta(1, 1) prior). With two variants the probability
  that one beats the other is exact (Evan Miller's closed form for integer
  Beta parameters); with more it is a Monte Carlo estimate with a fixed seed,
  so the same data always gives the same answer.
* ``proportion_difference``: Newcombe's hybrid score interval (his method 10)
  for the difference of two proportions, built from Wilson score intervals;
  it stays inside [-1, 1] and behaves with small counts and rates near 0.
* ``mean_difference``: Welch's normal approximation for the difference of two
  means from counts, sums and sums of squares (what SQL aggregates give), used
  for revenue per entrant.
"""

import math
import random
from statistics import NormalDist

Z95 = NormalDist().inv_cdf(0.975)
MONTE_CARLO_DRAWS = 20_000  # standard error at most 0.0036
SEED = 20260105


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


EXACT_TERMS_LIMIT = 20_000


def prob_greater(a1: int, b1: int, a2: int, b2: int) -> float:
    """P(X > Y) for X ~ Beta(a1, b1), Y ~ Beta(a2, b2) with integer parameters.

    Evan Miller's closed form sums ``a1`` terms, each in log space. By
    symmetry the same probability is a sum over ``a2``, ``b1`` or ``b2``
    terms (1 - X and 1 - Y are Beta too), so the shortest sum is used. When
    even that has more than ``EXACT_TERMS_LIMIT`` terms, every parameter is
    that large and both posteriors are as good as normal: the difference of
    two normals answers to far better than 0.001.
    """
    options = [(a1, (a1, b1, a2, b2), False), (a2, (a2, b2, a1, b1), True),
               (b2, (b2, a2, b1, a1), False), (b1, (b1, a1, b2, a2), True)]
    terms, params, complement = min(options, key=lambda option: option[0])
    if terms > EXACT_TERMS_LIMIT:
        return _normal_prob_greater(a1, b1, a2, b2)
    p = _miller(*params)
    return min(max(1.0 - p if complement else p, 0.0), 1.0)


def _miller(a1: int, b1: int, a2: int, b2: int) -> float:
    total = 0.0
    base = _log_beta(a2, b2)
    for i in range(int(a1)):
        total += math.exp(_log_beta(a2 + i, b1 + b2) - math.log(b1 + i) - _log_beta(1 + i, b1) - base)
    return total


def _normal_prob_greater(a1, b1, a2, b2) -> float:
    def moments(a, b):
        return a / (a + b), a * b / ((a + b) ** 2 * (a + b + 1))

    (m1, v1), (m2, v2) = moments(a1, b1), moments(a2, b2)
    return NormalDist().cdf((m1 - m2) / math.sqrt(v1 + v2))


def prob_best(arms: list[tuple[int, int]], *, draws: int = MONTE_CARLO_DRAWS, seed: int = SEED) -> list[float]:
    """For (successes, trials) per variant, the posterior probability that each has the highest rate."""
    params = [(1 + s, 1 + max(n - s, 0)) for s, n in arms]
    if len(params) == 1:
        return [1.0]
    if len(params) == 2:
        (a1, b1), (a2, b2) = params
        p = prob_greater(a1, b1, a2, b2)
        return [p, 1.0 - p]
    rng = random.Random(seed)
    wins = [0] * len(params)
    for _ in range(draws):
        samples = [rng.betavariate(a, b) for a, b in params]
        wins[samples.index(max(samples))] += 1
    return [w / draws for w in wins]


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for one proportion."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def proportion_difference(s1: int, n1: int, s2: int, n2: int, z: float = Z95) -> dict:
    """p1 - p2 with Newcombe's hybrid score 95 % interval."""
    p1, p2 = (s1 / n1 if n1 else 0.0), (s2 / n2 if n2 else 0.0)
    l1, u1 = wilson(s1, n1, z)
    l2, u2 = wilson(s2, n2, z)
    diff = p1 - p2
    low = diff - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = diff + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return {"difference": diff, "low": low, "high": high}


def mean_difference(n1: int, sum1: float, sumsq1: float, n2: int, sum2: float, sumsq2: float,
                    z: float = Z95) -> dict:
    """mean1 - mean2 with a Welch (unequal variances) normal-approximation 95 % interval."""
    def mean_var(n, total, sumsq):
        if n == 0:
            return 0.0, 0.0
        mean = total / n
        var = (sumsq - n * mean * mean) / (n - 1) if n > 1 else 0.0
        return mean, max(var, 0.0)

    m1, v1 = mean_var(n1, sum1, sumsq1)
    m2, v2 = mean_var(n2, sum2, sumsq2)
    se = math.sqrt((v1 / n1 if n1 else 0.0) + (v2 / n2 if n2 else 0.0))
    diff = m1 - m2
    return {"difference": diff, "low": diff - z * se, "high": diff + z * se}
