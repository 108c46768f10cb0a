"""The shipped CRM specs against the native folder: a generated folder reshaped into HubSpot's standard
exports (default property names, picklist values, HubSpot's date format, lifecycle date properties,
the roll-ups HubSpot counts as of the export) trains with ``--spec hubspot`` alone to within 0.01
ROC AUC of the native folder on the same test leads, with the as-of-export roll-ups, the lifecycle
stage and personal data kept out and a team's custom properties in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.data.synthetic import write_dataset
from leadscore.data.synthetic.hubspot import hubspot_tables
from leadscore.data.synthetic.salesforce import salesforce_tables
from leadscore.modeling.options import TrainOptions
from leadscore.modeling.train import train_model
from leadscore.scoring.bundle import ModelBundle
from leadscore.scoring.contract import load_contract
from leadscore.spec import load_spec
from tests.helpers import make_tables, mlflow_env, private_env

N_LEADS = 6000
ROLLUPS = ("Number of Pageviews", "Number of Sessions", "Number of Form Submissions", "Last Activity Date")


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The generated folder, and the model the synthetic spec trains on it."""
    root = tmp_path_factory.mktemp("native")
    tables = make_tables(N_LEADS, 3, fault_rate=0.0)
    write_dataset(tables, root / "native")
    result = train_model(
        root / "native", load_spec("synthetic"), TrainOptions(contract=load_contract()[0], search_trials=0)
    )
    return {"tables": tables, "result": result}


def _train(root: Path, folder: Path, spec: str) -> dict[str, Any]:
    with private_env({"LEADSCORE_SEARCH_TRIALS": "0", **mlflow_env(root)}):
        result = CliRunner().invoke(app, ["train", str(folder), "--spec", spec, "--json"])
    assert result.exit_code == 0, result.output
    payload: dict[str, Any] = json.loads(result.stdout)
    return payload


@pytest.fixture(scope="module")
def hubspot(native: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("hubspot")
    crm = root / "crm"
    crm.mkdir()
    for name, frame in hubspot_tables(native["tables"], 3).items():
        frame.to_csv(crm / f"{name}.csv", index=False)
    return {"root": root, "crm": crm, "native": native["result"], "payload": _train(root, crm, "hubspot")}


@pytest.fixture(scope="module")
def salesforce(native: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("salesforce")
    crm = root / "org"
    crm.mkdir()
    for name, frame in salesforce_tables(native["tables"], 3).items():
        frame.to_csv(crm / f"{name}.csv", index=False)
    # The org's own words: its qualified status (the shipped spec's is Salesforce's converted one).
    own = {"extends": "salesforce", "name": "acme-salesforce", "label": {"stages": ["Sales Qualified"]}}
    spec = root / "acme.yaml"
    spec.write_text(yaml.safe_dump(own, sort_keys=False))
    payload = _train(root, crm, str(spec))
    return {"root": root, "crm": crm, "native": native["result"], "payload": payload, "spec": spec}


def test_hubspot_exports_train_as_well_as_the_native_folder(hubspot: dict[str, Any]) -> None:
    payload, native = hubspot["payload"], hubspot["native"]
    assert payload["n_test"] == native.n_test  # the same leads scored at the same moments, split alike
    assert abs(payload["metrics"]["roc_auc"] - native.metrics["roc_auc"]) < 0.01, (
        payload["metrics"]["roc_auc"],
        native.metrics["roc_auc"],
    )
    # The label from the lifecycle date properties is the status history's, lead for lead.
    card = ModelBundle.load(Path(payload["model_path"])).meta.card
    assert card is not None
    assert round(card.data["test_sql_rate"] * payload["n_test"]) == int(native.test_y.sum())


def test_as_of_export_rollups_personal_data_and_the_stage_are_kept_out(hubspot: dict[str, Any]) -> None:
    bundle = ModelBundle.load(Path(hubspot["payload"]["model_path"]))
    excluded = bundle.meta.excluded_columns
    for column in ROLLUPS:
        assert column not in bundle.fields and "as of the export" in excluded[column]
    for column in ("First Name", "Last Name", "Email", "Phone Number", "Company Name", "Lifecycle Stage"):
        assert column not in bundle.fields and column in excluded
    # A team's own properties are features without naming them; the declared activity too.
    assert {"Seniority", "Department", "Tech Stack", "Job Title", "Number of Employees"} <= set(bundle.fields)
    assert {"pricing_page_views_7d", "demo_requests", "emails_30d"} <= set(bundle.fields)
    contacts = pd.read_csv(hubspot["crm"] / "contacts.csv")
    assert (
        contacts["Number of Employees"]
        .isin(["1-5", "5-25", "25-50", "50-100", "100-500", "500-1000", "1000+"])
        .all()
    )


def test_an_export_without_page_views_reads_them_as_none(hubspot: dict[str, Any], tmp_path: Path) -> None:
    """Page views are an optional log: an export without them is read, its page-view counts all 0."""
    from leadscore.data.folders import read_leads

    for name in ("contacts", "engagements", "form_submissions"):
        (tmp_path / f"{name}.csv").write_bytes((hubspot["crm"] / f"{name}.csv").read_bytes())
    spec = load_spec("hubspot")
    without = read_leads(tmp_path, spec, labels=True)
    full = read_leads(hubspot["crm"], spec, labels=True)
    assert (without["page_views_30d"] == 0).all() and full["page_views_30d"].sum() > 0
    assert without["demo_requests"].equals(full["demo_requests"])  # the other logs read as before


def test_salesforce_objects_train_as_well_as_the_native_folder(salesforce: dict[str, Any]) -> None:
    payload, native = salesforce["payload"], salesforce["native"]
    assert payload["n_test"] == native.n_test
    assert abs(payload["metrics"]["roc_auc"] - native.metrics["roc_auc"]) < 0.01, (
        payload["metrics"]["roc_auc"],
        native.metrics["roc_auc"],
    )
    bundle = ModelBundle.load(Path(payload["model_path"]))
    card = bundle.meta.card
    assert card is not None
    assert round(card.data["test_sql_rate"] * payload["n_test"]) == int(native.test_y.sum())
    excluded = bundle.meta.excluded_columns
    for column in ("Status", "IsConverted", "ConvertedDate", "FirstName", "Email", "Company"):
        assert column not in bundle.fields and column in excluded
    # the Campaign join, the email-keyed Pardot log and the org's custom fields all reach the model
    assert {"webinar_registrations", "webinar_attendance", "pricing_visits_7d", "demo_requests"} <= set(
        bundle.fields
    )
    assert {"Seniority__c", "Tech_Stack__c", "Title", "NumberOfEmployees"} <= set(bundle.fields)
    assert "calls" in bundle.fields or "calls" in excluded  # logged after the moment: never read


def test_spark_reads_the_salesforce_objects_as_the_single_machine(
    salesforce: dict[str, Any], spark: Any, tmp_path: Path
) -> None:
    """The email-keyed Pardot log, the Campaign join and the field history, inside Spark."""
    import numpy as np

    from leadscore.data.folders import read_leads
    from leadscore.spark.features import declared_frame
    from leadscore.spark.session import write_parquet

    spec = load_spec(str(salesforce["spec"]))
    single = read_leads(salesforce["crm"], spec, labels=True).set_index("Id")
    write_parquet(declared_frame(spark, str(salesforce["crm"]), spec, labels=True), str(tmp_path / "f"))
    got = pd.read_parquet(tmp_path / "f").set_index("Id").loc[single.index]
    for name in [*spec.declared, spec.label.column]:
        a, b = single[name].to_numpy(float), got[name].to_numpy(float)
        assert np.allclose(a, b, equal_nan=True, atol=1e-9), name
    assert single["webinar_registrations"].sum() > 0 and single["pricing_visits_7d"].sum() > 0


def test_an_org_without_pardot_and_the_lifecycle_labels_validate(
    hubspot: dict[str, Any], salesforce: dict[str, Any], tmp_path: Path
) -> None:
    """Salesforce without Account Engagement reads its other objects (the visits count nothing), and
    validate counts the SQLs a HubSpot export's lifecycle dates make (it said 0 / 0 before)."""
    from leadscore.data.checking import validate_export
    from leadscore.data.folders import read_leads

    for path in salesforce["crm"].glob("*.csv"):
        if path.stem != "VisitorActivity":
            (tmp_path / path.name).write_bytes(path.read_bytes())
    spec = load_spec(str(salesforce["spec"]))
    without = read_leads(tmp_path, spec, labels=True)
    assert (without["page_visits_30d"] == 0).all() and without["webinar_registrations"].sum() > 0
    assert validate_export(tmp_path, spec).positives > 0
    report = validate_export(hubspot["crm"], load_spec("hubspot"))
    assert report.positives > 50 and report.negatives > 1000
