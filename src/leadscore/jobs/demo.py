"""The whole main job on synthetic data, for ``make demo``."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pandas as pd

from leadscore.config import get_settings
from leadscore.data.sources import read_table, write_frame
from leadscore.data.synthetic import GeneratorConfig, generate, write_dataset
from leadscore.data.validate import validate_frame
from leadscore.errors import UserError
from leadscore.jobs.workflow import monitor_and_report, train_and_log
from leadscore.monitoring.feedback import import_feedback
from leadscore.reports.html import lead_report, queue_report, write_html
from leadscore.reports.model_card import model_card
from leadscore.scoring.batch import score_file
from leadscore.scoring.points import load_rules
from leadscore.spec import DatasetSpec, load_spec
from leadscore.store.db import Store, open_store
from leadscore.store.scores import now_utc
from leadscore.tracking.loading import load_bundle

log = logging.getLogger(__name__)


def info(message: str) -> None:
    log.info(message)


def _step(title: str) -> None:
    info(f"\n==> {title}")


def run_demo(out: Path, leads: int, seed: int, port: int) -> None:
    """The whole path on synthetic data: generate, validate, points model, train, batch-score,
    reports, feedback and monitoring, the service; then where to look."""
    train_dir = out / "train"
    spec, frame = _generate_and_validate(train_dir, leads, seed)
    points_path = _points_baseline(spec, frame, out)
    logged = _train(train_dir, spec, seed)
    model = Path(logged["model_path"])
    new_dir = out / "new_leads"
    store = _batch_score(model, new_dir, out, leads, seed)
    _step(f"write the reports for sales and for the quarterly review -> {out / 'reports'}")
    reports = _write_reports(model, new_dir, out / "reports")
    for kind, path in reports.items():
        info(f"    {kind:<6} {path}")
    monitors = _feedback_and_monitoring(model, train_dir, out, leads, seed, store)
    _step(f"start the scoring service on port {port} (--insecure-dev: no API key, local only) and call it")
    answer, command = _call_service(model, new_dir, port)
    info(f"    $ {command}")
    for line in answer.splitlines():
        info(f"    {line}")
    info("\nWhere to look:")
    info(f"    data:              {train_dir}")
    info(f"    points per lead:   {points_path}")
    info(f"    scores + reasons:  {out / 'scored.csv'}")
    for kind, path in reports.items():
        info(f"    {kind + ' report:':<18} {path}")
    info(f"    monitor report:    {monitors[0]}")
    info(f"    served monitor:    {monitors[1]}")
    info(f"    store:             {store.shown}  (decisions, the score log; LEADSCORE_DATABASE_URL)")
    info(
        f"    model bundle:      {model}  (plain MLflow: PATH=.venv/bin:$PATH mlflow models serve -m {model} --env-manager local)"
    )
    info(
        f"    MLflow:            .venv/bin/mlflow ui --backend-store-uri {get_settings().tracking_uri}  -> http://127.0.0.1:5000"
    )
    info(
        f"    scoring API:       .venv/bin/leadscore serve --model {model} --insecure-dev --port {port}  (docs: /docs)"
    )
    info(
        f"    sales pages:       the same server, http://127.0.0.1:{port}/app/queue  (the MQLs the store's "
        "score log holds; a rep signs in with their key, docs/pages.md)"
    )


def _generate_and_validate(train_dir: Path, leads: int, seed: int) -> tuple[DatasetSpec, pd.DataFrame]:
    _step(f"generate {leads:,} synthetic leads (seed {seed}) -> {train_dir}")
    tables = generate(GeneratorConfig(leads=leads, seed=seed))
    write_dataset(tables, train_dir)
    info(f"    {tables['leads'].num_rows:,} leads, {tables['events'].num_rows:,} events")
    _step("validate the export against the shipped dataset spec 'synthetic'")
    spec = load_spec("synthetic")
    frame = read_table(train_dir)
    report = validate_frame(frame, spec, source=str(train_dir))
    for line in report.lines():
        info(f"    {line}")
    if not report.usable:
        raise UserError("demo data failed validation")
    return spec, frame


def _points_baseline(spec: DatasetSpec, frame: pd.DataFrame, out: Path) -> Path:
    _step("score with the written points model (the baseline)")
    model = load_rules(spec.rules or "b2b-default")
    scored = model.score(frame)
    scored.insert(0, "lead_id", frame["lead_id"].to_numpy())
    points_path = write_frame(scored, out / "points.csv")
    mql = scored["mql"].to_numpy()
    rate = float(frame.loc[mql, spec.label.column].mean()) if mql.any() else 0.0
    info(f"    {mql.mean():.1%} of leads are MQL; their MQL->SQL rate is {rate:.1%}")
    return points_path


def _train(train_dir: Path, spec: DatasetSpec, seed: int) -> dict[str, Any]:
    _step("train: LightGBM + baselines, calibration, leakage guard, agreed cutoff -> MLflow")
    result, logged = train_and_log(train_dir, spec, seed=seed)
    m, cut = result.metrics, result.cutoff
    info(
        f"    test ROC AUC {m['roc_auc']:.3f} (points model {result.baselines['points_model']['roc_auc']:.3f}, "
        f"logistic regression {result.baselines['logistic_regression']['roc_auc']:.3f}), ECE {m['ece']:.4f}"
    )
    info(
        f"    cutoff p >= {cut.threshold:.3f}: {cut.expected_mql_share:.1%} MQL, MQL->SQL {cut.expected_sql_rate:.1%} "
        f"(points model at the same volume: {cut.points_model_sql_rate_at_same_volume or 0.0:.1%})"
    )
    info(
        f"    registered {logged['model_uri']} ({', '.join(logged['aliases'])}); exported to {logged['model_path']}"
    )
    return logged


def _batch_score(model: Path, new_dir: Path, out: Path, leads: int, seed: int) -> Store:
    _step(f"batch-score a fresh export of new leads -> {out / 'scored.csv'}")
    write_dataset(generate(GeneratorConfig(leads=max(1000, leads // 10), seed=seed + 1)), new_dir)
    store = open_store()  # the SQLite default (LEADSCORE_DATABASE_URL): decisions and the score log
    summary = score_file(
        new_dir, load_bundle(str(model)), out / "scored.csv", explain=3, progress=False, log_to=store
    )
    info(
        f"    {summary['rows']:,} leads scored, {summary['mql_share']:.1%} MQL; every score logged to {store.shown}"
    )
    return store


def _feedback_and_monitoring(
    model: Path, train_dir: Path, out: Path, leads: int, seed: int, store: Store
) -> tuple[str, str]:
    """The monitor on a drifted later period, from its outcomes and from the served log; the two
    reports' paths."""
    _step("sales feedback and monitoring: a later period with a new channel and changed behaviour")
    drift_dir = out / "later_period"
    write_dataset(
        generate(GeneratorConfig(leads=max(2000, leads // 5), seed=seed + 2, drift=True)), drift_dir
    )
    verdict = _monitor(model, train_dir, drift_dir, out)
    info(f"    verdict: {verdict['verdict']} (report: {verdict['report']})")
    for reason in verdict["reasons"][:4]:
        info(f"      {reason}")
    served = _monitor_served(model, train_dir, drift_dir, out, store)
    sent = served["served"]
    info(
        f"    monitor --served: {sent['answers']:,} logged answers, {sent['mql_share_sent']:.1%} sent to sales as MQL, "
        f"{sent['leads_with_outcome']:,} with a sales decision; verdict: {served['verdict']} (report: {served['report']})"
    )
    return str(verdict["report"]), str(served["report"])


def _write_reports(model: Path, data: Path, folder: Path) -> dict[str, Path]:
    """The lead report of the best-scored new lead, the week's MQL queue and the model card."""
    bundle = load_bundle(model)
    frame = read_table(data)
    best = str(frame["lead_id"].iloc[int(bundle.score_frame(frame).p_sql.argmax())])
    return {
        "lead": write_html(lead_report(bundle, data, best), folder / f"lead-{best}.html"),
        "queue": write_html(queue_report(bundle, data, window=7), folder / "queue.html"),
        "model": write_html(model_card(bundle), folder / "model-card.html"),
    }


def _monitor(model: Path, reference: Path, current: Path, out: Path) -> dict[str, Any]:
    summary = import_feedback(current / "feedback.parquet")  # into the store (LEADSCORE_DATABASE_URL)
    info(
        f"    feedback import: {summary['new']:,} new sales decisions ({summary['total']:,} in {summary['store']})"
    )
    return monitor_and_report(model, reference, current, out / "reports" / "monitor.html")


def _monitor_served(model: Path, reference: Path, later: Path, out: Path, store: Store) -> dict[str, Any]:
    """The later period scored with logging on (as the CRM's traffic would be), then monitored from the
    score log: what was really sent, joined with sales' decisions."""
    since = now_utc()
    score_file(later, load_bundle(model), out / "later_scored.csv", progress=False, log_to=store)
    return monitor_and_report(
        model,
        reference,
        None,
        out / "reports" / "monitor-served.html",
        feedback=store.url,
        served_since=since,
    )


def _call_service(model: Path, data: Path, port: int) -> tuple[str, str]:
    """Start the real service, make one real HTTP call with curl, stop it; return the answer."""
    frame = read_table(data)
    lead = json.loads(
        frame.sort_values("pricing_page_views_7d").tail(1).to_json(orient="records", date_format="iso")
    )[0]
    keep = ("lead_id", "scored_at", *load_spec("synthetic").features)  # what a CRM sends, no ground truth
    body = json.dumps({k: lead[k] for k in keep if k in lead})
    env = {**os.environ, "LEADSCORE_INSECURE_DEV": "true"}
    cmd = [
        sys.executable,
        "-m",
        "leadscore",
        "serve",
        "--model",
        str(model),
        "--port",
        str(port),
        "--insecure-dev",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                with urllib.request.urlopen(f"{url}/readyz", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None:
                    raise UserError(
                        f"the service did not start (is port {port} free? use `make demo PORT=...`)"
                    ) from None
                time.sleep(0.2)
        command = f"curl -s -X POST {url}/v1/score -H 'Content-Type: application/json' -d '{body}'"
        if shutil.which("curl"):
            raw = subprocess.run(
                [
                    "curl",
                    "-s",
                    "-X",
                    "POST",
                    f"{url}/v1/score",
                    "-H",
                    "Content-Type: application/json",
                    "-d",
                    body,
                ],
                capture_output=True,
                text=True,
                timeout=30,
            ).stdout
        else:
            req = urllib.request.Request(
                f"{url}/v1/score", data=body.encode(), headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(req, timeout=30) as r:
                raw = r.read().decode()
        return json.dumps(json.loads(raw), indent=2), command
    finally:
        proc.terminate()
        proc.wait(timeout=20)
