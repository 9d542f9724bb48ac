"""Statistics of K sampled completions per example: pass@k, majority@k, mean sampled accuracy.

- **pass@k** is the unbiased estimator of Chen et al. (2021, "Evaluating Large Language Models
  Trained on Code", Eq. 1), also used by the DeepSeek-R1 report: from n samples of which c are
  correct, pass@k = 1 − C(n−c, k) / C(n, k), the probability that at least one of k samples drawn
  without replacement from the n is correct. For k = n it is "any of the n correct"; for k = 1 it is
  c / n, the mean sampled accuracy.
- **majority@k** (self-consistency, Wang et al. 2023): the example counts as correct when the most
  frequent extracted answer among the k samples is a correct one. Samples without an answer do not
  vote; ties go to the answer whose first vote came earliest (sample order), so the result is fixed
  by the samples alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import comb


@dataclass(frozen=True)
class Sampling:
    """`mr1 eval --samples K`: K completions per example (0 = greedy only), drawn from `seed`."""

    k: int = 0
    seed: int = 0


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct (Chen et al. 2021).

    >>> pass_at_k(8, 0, 8), pass_at_k(8, 1, 8), pass_at_k(8, 2, 1), round(pass_at_k(4, 1, 2), 4)
    (0.0, 1.0, 0.25, 0.5)
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def majority_vote(answers: Sequence[str | None], correct: Sequence[bool]) -> tuple[str | None, bool]:
    """The most frequent answer (None never votes; ties → the earliest first vote) and whether it is
    correct (the correctness of a sample that gave it). No answer at all → (None, False).

    >>> majority_vote(["3", "4", "4", "3", None], [True, False, False, True, False])
    ('3', True)
    >>> majority_vote(["5", None, "5", "2"], [False, False, False, True])
    ('5', False)
    >>> majority_vote([None, None], [False, False])
    (None, False)
    """
    if len(answers) != len(correct):
        raise ValueError(f"{len(answers)} answers but {len(correct)} correctness flags")
    votes: dict[str, int] = {}
    right: dict[str, bool] = {}
    for answer, ok in zip(answers, correct, strict=True):
        if answer is None:
            continue
        votes[answer] = votes.get(answer, 0) + 1
        right.setdefault(answer, bool(ok))
    if not votes:
        return None, False
    winner = max(votes, key=lambda a: votes[a])  # max keeps the first of equal counts: insertion order
    return winner, right[winner]


def ks_to_report(k: int) -> list[int]:
    """1, 2, 4, … up to k, and k itself.

    >>> ks_to_report(8), ks_to_report(5), ks_to_report(1)
    ([1, 2, 4, 8], [1, 2, 4, 5], [1])
    """
    ks, value = [], 1
    while value < k:
        ks.append(value)
        value *= 2
    return [*ks, k]


def sampled_summary(
    per_example: Sequence[Sequence[bool]], majority_correct: Sequence[bool]
) -> dict[str, float]:
    """Percentages over examples: `sampled/mean_accuracy`, `sampled/pass@k` for k in 1, 2, 4, … K
    (unbiased estimator) and `sampled/majority@K`. Every example has the same K samples.

    >>> s = sampled_summary([[True, False, False, False], [False, False, False, False]], [False, False])
    >>> s["sampled/mean_accuracy"], s["sampled/pass@1"], s["sampled/pass@2"], s["sampled/pass@4"], s["sampled/majority@4"]
    (12.5, 12.5, 25.0, 50.0, 0.0)
    """
    if not per_example:
        return {}
    k = len(per_example[0])
    if any(len(flags) != k for flags in per_example):
        raise ValueError("every example needs the same number of samples")
    n = len(per_example)

    def percent(total: float) -> float:
        return round(100.0 * total / n, 4)

    summary = {"sampled/mean_accuracy": percent(sum(sum(f) / k for f in per_example))}
    for j in ks_to_report(k):
        summary[f"sampled/pass@{j}"] = percent(sum(pass_at_k(k, sum(f), j) for f in per_example))
    summary[f"sampled/majority@{k}"] = percent(sum(bool(m) for m in majority_correct))
    return summary
