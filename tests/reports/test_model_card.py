"""The model card and train --json say plainly when the cutoff's promise is not kept."""

from __future__ import annotations

import html

from leadscore.reports.model_card import model_card
from leadscore.scoring.bundle import ModelBundle
from tests.helpers import Trained


def test_train_json_and_the_card_carry_the_promises_warnings(trained: Trained) -> None:
    payload = trained["payload"]
    assert isinstance(payload["cutoff"]["warnings"], list)
    assert set(payload["label_windows"]) >= {"observed_until", "closed", "open_positive", "open_unknown"}
    head = payload["time_head"]  # the fixture's folder has a status history: the head is trained
    assert set(head["ece"]) == {"7", "30", "90"} and all(0 <= e < 0.05 for e in head["ece"].values())
    assert 0.6 < head["concordance"] <= 1 and head["trained_on"] > 0
    bundle = ModelBundle.load(trained["model_path"])
    said = "the threshold does not keep the contract's MQL->SQL rate of 30%: 24.0% on the test leads"
    bundle.meta.cutoff.warnings = [said]
    page = html.unescape(model_card(bundle))
    assert f"<strong>The promise:</strong> {said}" in page
    assert "Label windows" in page and 'a lead that has not had its chance is not a "no"' in page


def test_the_card_and_train_json_say_what_the_shipped_model_learned_from(trained: Trained) -> None:
    payload = trained["payload"]
    learned = payload["learned_from"]
    assert learned["finalized"] and learned["rows"] > payload["n_train"] + payload["n_test"] - 1
    assert payload["cutoff"]["measured_on"] == f"out-of-fold scores of {learned['rows']:,} labelled leads"
    bundle = ModelBundle.load(trained["model_path"])
    page = html.unescape(model_card(bundle))
    assert f"learned from every one of {learned['rows']:,} labelled leads" in page
    assert "the held-out evaluation of the same recipe trained without the test leads" in page
    assert f"its promise measured on out-of-fold scores of {learned['rows']:,} labelled leads" in page
