"""Several fits of one recipe, averaged into one booster.

A small export's shipped booster varies with its bagging draw: the same rows, shape and tree count
fitted with another seed move a held-out AUC by about as much as the choices tuned on it. Averaging
a few such fits cancels part of that variance (issue 30: three fits gained +0.00024 +- 0.00012 of
ROC AUC a split over 20 hidden X Education splits, docs/performance.md).

The average of k boosters' raw scores is itself one booster: every fit's trees, each leaf value
(and each node's expected value, which TreeSHAP reads) divided by k. The bundle, its leaf-read
grade parts and its exact reasons stay what they are for one booster; only the trees are k times
as many.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import lightgbm as lgb

_TREE = re.compile(r"(?m)^Tree=\d+\n")
_VALUES = re.compile(r"(?m)^(leaf_value=|internal_value=)(.*)$")
_SIZES = re.compile(r"(?m)^tree_sizes=.*$")
_LINEAR = re.compile(r"(?m)^is_linear=1$")


def averaged(boosters: Sequence[lgb.Booster]) -> lgb.Booster:
    """One booster whose raw score (and contributions) is the mean of ``boosters``' (fitted on the
    same features; the first one's header, feature names and parameters are kept)."""
    if len(boosters) == 1:
        return boosters[0]
    k = len(boosters)
    texts = [b.model_to_string() for b in boosters]
    first = texts[0]
    start = first.index("\nTree=0\n") + 1
    head, tail = first[:start], first[first.index("end of trees") :]
    blocks: list[str] = []
    for text in texts:
        body = text[text.index("\nTree=0\n") + 1 : text.index("end of trees")]
        if _LINEAR.search(body):  # a linear tree's leaves are functions, not values
            raise ValueError("linear trees cannot be averaged by their leaf values")
        blocks += [_VALUES.sub(lambda m: _divided(m, k), tree) for tree in _TREE.split(body)[1:]]
    trees = [f"Tree={i}\n{block}" for i, block in enumerate(blocks)]
    head = _SIZES.sub("tree_sizes=" + " ".join(str(len(t)) for t in trees), head)
    return lgb.Booster(model_str=head + "".join(trees) + tail)


def _divided(match: re.Match[str], k: int) -> str:
    """A ``leaf_value=`` or ``internal_value=`` line with each value divided by ``k`` (repr: the
    shortest text that reads back as the same double)."""
    return match[1] + " ".join(repr(float(v) / k) for v in match[2].split(" "))


def fit_seeds(fit: Callable[[int], lgb.Booster], seed: int, seeds: int) -> lgb.Booster:
    """``seeds`` fits of one recipe (``fit(seed)``: seeds ``seed``, ``seed + 1`` ...) averaged."""
    return averaged([fit(seed + i) for i in range(max(1, seeds))])
