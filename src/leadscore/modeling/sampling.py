"""``train --sample N``: a training table of at most N leads, drawn so that the model stays right.

The booster learns from every SQL of the fit rows (a share of them when they would fill more than
half the sample) and a share of their non-SQLs. The validation
and test leads are drawn uniformly, one rate for both: calibration, the cutoff contract's MQL share
and MQL->SQL rate, and every test metric are then measured on leads like the export's own and stay
right. Each kept row is weighted by the inverse of its chance to be kept (a fit's non-SQL by the
inverse of their share; a validation or test lead by the inverse of the uniform rate): the fits'
losses keep their expectation (a negative-down-sampled fit, as in He et al. 2014, "Practical
lessons from predicting clicks on ads at Facebook"), the refit on every sampled lead weighs each
part as the export does, and leads per week are counted as the export's. The same seed draws the
same sample.
"""

from __future__ import annotations

import functools
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from leadscore.data.predraw import predraw
from leadscore.errors import UserError
from leadscore.modeling.dataset import Split, Survival, TrainingData, read_training_data
from leadscore.modeling.options import TrainOptions
from leadscore.modeling.survival import Observed
from leadscore.spec import DatasetSpec

MIN_SAMPLE = 1_000  # fewer leads than this cannot be validated and tested apart


@dataclass(frozen=True)
class Sample:
    """Which rows of the full table were kept, how each fit row is weighted, and the rates drawn."""

    rows: np.ndarray  # indices into the full table, sorted
    weight: np.ndarray  # per kept row: how many leads of the export it stands for
    split: Split  # the split, as positions in the kept rows
    negative_rate: float  # the share of the fit rows' non-SQLs kept
    uniform_rate: float  # the share of validation and test leads kept
    positive_rate: float = 1.0  # the share of the fit rows' SQLs kept (below 1: more than half the room)

    def note(self, total: int) -> str:
        kept_negatives = f"1 in {1 / self.negative_rate:,.1f}" if self.negative_rate < 1 else "all"
        kept_positives = (
            "every SQL" if self.positive_rate >= 1 else f"1 in {1 / self.positive_rate:,.1f} SQLs"
        )
        return (
            f"trained on a sample of {len(self.rows):,} of {total:,} labelled leads (--sample): {kept_positives} "
            f"of the fit rows and {kept_negatives} of their non-SQLs, weighted back; validation and test "
            f"leads drawn uniformly ({self.uniform_rate:.1%})"
        )


def check_size(size: int) -> None:
    if size < MIN_SAMPLE:
        raise UserError(f"--sample: {size:,} leads are too few (at least {MIN_SAMPLE:,})")


def draw_sample(
    split: Split, y: np.ndarray, size: int, seed: int, drawn: np.ndarray | None = None
) -> Sample | None:
    """At most ``size`` rows of the table whose labels are ``y`` (None when it is no larger and every
    row was drawn uniformly). ``drawn``: which rows were drawn uniformly before reading (the others
    were drawn as possible SQLs): validation and test leads are taken from those alone."""
    check_size(size)
    total = len(y)
    if total <= size and drawn is None:
        return None
    rng = np.random.default_rng(seed)
    uniform = min(1.0, size / total)
    valid = split.valid[(rng.random(len(split.valid)) < uniform) & _uniformly_drawn(split.valid, drawn)]
    test = split.test[(rng.random(len(split.test)) < uniform) & _uniformly_drawn(split.test, drawn)]
    fit_y = y[split.fit]
    positives = split.fit[fit_y == 1]
    negatives = split.fit[fit_y == 0]
    room = max(size - len(valid) - len(test), 2)
    # every SQL while they take at most half the room; else a share of them, weighted back
    positive_rate = min(1.0, (room / 2) / max(len(positives), 1))
    if positive_rate < 1:
        positives = positives[rng.random(len(positives)) < positive_rate]
    # at least as many non-SQLs as SQLs: a fit of SQLs alone learns nothing
    rate = min(1.0, max(room - len(positives), len(positives), 1) / max(len(negatives), 1))
    kept_negatives = negatives[rng.random(len(negatives)) < rate]
    fit = np.sort(np.concatenate([positives, kept_negatives]))
    rows = np.sort(np.concatenate([fit, valid, test]))
    weight = np.ones(len(rows))
    weight[np.searchsorted(rows, positives)] = 1.0 / positive_rate
    weight[np.searchsorted(rows, kept_negatives)] = 1.0 / rate
    weight[np.searchsorted(rows, np.concatenate([valid, test]))] = 1.0 / uniform
    at = np.searchsorted  # a kept row's position in ``rows``
    remapped = Split(at(rows, fit), at(rows, valid), at(rows, test), split.kind)
    for part, idx in (("validation", remapped.valid), ("test", remapped.test)):
        if len(np.unique(y[rows][idx])) < 2:
            raise UserError(f"--sample: the sampled {part} part has only one class; sample more leads")
    return Sample(rows, weight, remapped, rate, uniform, positive_rate)


def _uniformly_drawn(rows: np.ndarray, drawn: np.ndarray | None) -> np.ndarray:
    """Which of ``rows`` were drawn uniformly (all, when no draw came before)."""
    return np.ones(len(rows), dtype=bool) if drawn is None else drawn[rows]


def sampled(data: TrainingData, split: Split, size: int | None, seed: int) -> tuple[TrainingData, Split]:
    """The training data and split of ``train --sample size`` (as they are without it, or when the
    table is no larger)."""
    drawn = draw_sample(split, data.y, size, seed, data.uniform) if size is not None else None
    if drawn is None:
        return data, split
    return sampled_data(data, drawn), drawn.split


def sampled_data(data: TrainingData, sample: Sample) -> TrainingData:
    """The training data restricted to the sample's rows, with their weights and the run's note."""
    frame = data.frame.iloc[sample.rows].reset_index(drop=True)
    notes = [*data.notes, sample.note(len(data.y))]
    before = data.weight_of(sample.rows)
    weight = sample.weight if before is None else sample.weight * before
    uniform = None if data.uniform is None else data.uniform[sample.rows]
    return replace(data, frame=frame, y=data.y[sample.rows], weight=weight, notes=notes, uniform=uniform)


def read_sampled(path: str | Path, spec: DatasetSpec, options: TrainOptions) -> TrainingData:
    """The training data of ``path``; with ``--sample`` on an export too big to read whole, read from
    its possible SQLs and a uniform share of its leads drawn while streaming (``data/predraw.py``),
    each row weighted by the export's leads it stands for, and named by the export's own digest."""
    read = functools.partial(
        read_training_data, spec=spec, feedback=options.feedback, feedback_source=options.feedback_source
    )
    if options.sample is None or options.tables is not None:
        return read(path, tables=options.tables)
    check_size(options.sample)
    with tempfile.TemporaryDirectory(prefix="leadscore-sample-") as tmp:
        drawn = predraw(Path(path), spec, options.sample, options.seed, Path(tmp))
        if drawn is None:
            return read(path)
        try:
            data = read(drawn.path)
        except UserError as exc:  # named as the user named the export, not the private copy
            raise UserError(str(exc).replace(str(drawn.path), str(path))) from exc
    ids = data.frame[spec.id]  # a predraw needs the spec's id
    survival = data.survival
    if survival is not None:  # the time head learns from the uniform part: leads as the export's
        keep = drawn.uniform(survival.frame[spec.id])
        survival = Survival(
            survival.frame.loc[keep].reset_index(drop=True),
            Observed(survival.obs.days[keep], survival.obs.event[keep]),
        )
    return replace(
        data,
        weight=drawn.weights(ids),
        uniform=drawn.uniform(ids),
        survival=survival,
        data_hash=drawn.digest,
        notes=[*data.notes, drawn.note()],
    )
