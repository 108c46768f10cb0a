"""The whole main job on synthetic data, for ``make demo``."""

from __future__ import annotations

from pathlib import Path

from leadscore._cli_util import info
from leadscore.config import UserError, load_spec
from leadscore.data.sources import read_table, write_frame
from leadscore.data.synthetic import GeneratorConfig, generate, write_dataset
from leadscore.data.validate import validate_frame
from leadscore.rules import load_rules


def _step(title: str) -> None:
    info(f"\n==> {title}")


def run_demo(out: Path, leads: int, seed: int, port: int) -> None:
    """Generate, validate and score with the points model; later steps are added as they land."""
    train_dir = out / "train"
    _step(f"generate {leads:,} synthetic leads (seed {seed}) -> {train_dir}")
    tables = generate(GeneratorConfig(leads=leads, seed=seed))
    write_dataset(tables, train_dir)
    info(f"    {tables['leads'].num_rows:,} leads, {tables['events'].num_rows:,} events")

    _step("validate the export against configs/datasets/synthetic.yaml")
    spec = load_spec("synthetic")
    frame = read_table(train_dir)
    report = validate_frame(frame, spec, source=str(train_dir))
    for line in report.lines():
        info(f"    {line}")
    if not report.usable:
        raise UserError("demo data failed validation")

    _step("score with the written points model (the baseline)")
    model = load_rules(spec.rules or "b2b-default")
    scored = model.score(frame)
    scored.insert(0, "lead_id", frame["lead_id"].to_numpy())
    points_path = write_frame(scored, out / "points.csv")
    mql = scored["mql"].to_numpy()
    rate = float(frame.loc[mql, spec.label.column].mean()) if mql.any() else 0.0
    info(f"    {mql.mean():.1%} of leads are MQL; their MQL->SQL rate is {rate:.1%}")

    _step("train: LightGBM + baselines, calibration, leakage guard, agreed cutoff -> MLflow")
    from leadscore.config import get_settings
    from leadscore.modeling.cutoff import load_contract
    from leadscore.modeling.train import TrainOptions, train
    from leadscore.registry import log_training, spec_to_yaml

    contract, contract_path = load_contract("default")
    result = train(
        train_dir, spec, TrainOptions(contract=contract, seed=seed, num_threads=get_settings().num_threads)
    )
    logged = log_training(result, train_dir, spec_to_yaml(spec.model_dump(mode="json")), contract_path)
    m, cut = result.metrics, result.cutoff
    info(
        f"    test ROC AUC {m['roc_auc']:.3f} (points model {result.baselines['points_model']['roc_auc']:.3f}, "
        f"logistic regression {result.baselines['logistic_regression']['roc_auc']:.3f}), ECE {m['ece']:.4f}"
    )
    info(
        f"    cutoff p >= {cut['threshold']:.3f}: {cut['expected_mql_share']:.1%} MQL, MQL->SQL {cut['expected_sql_rate']:.1%} "
        f"(points model at the same volume: {cut['points_model_sql_rate_at_same_volume']:.1%})"
    )
    info(
        f"    registered {logged['model_uri']} ({', '.join(logged['aliases'])}); exported to {logged['model_path']}"
    )

    new_dir = out / "new_leads"
    _step(f"batch-score a fresh export of new leads -> {out / 'scored.csv'}")
    write_dataset(generate(GeneratorConfig(leads=max(1000, leads // 10), seed=seed + 1)), new_dir)
    from leadscore.scoring import score_file

    summary = score_file(new_dir, logged["model_path"], out / "scored.csv", explain=3, progress=False)
    info(f"    {summary['rows']:,} leads scored, {summary['mql_share']:.1%} MQL")

    _step(f"start the scoring service on port {port} (--insecure-dev: no API key, local only) and call it")
    answer, command = _call_service(Path(logged["model_path"]), new_dir, port)
    info(f"    $ {command}")
    for line in answer.splitlines():
        info(f"    {line}")

    info("\nWhere to look:")
    info(f"    data:              {train_dir}")
    info(f"    points per lead:   {points_path}")
    info(f"    scores + reasons:  {out / 'scored.csv'}")
    info(
        f"    model bundle:      {logged['model_path']}  (plain MLflow: PATH=.venv/bin:$PATH mlflow models serve -m {logged['model_path']} --env-manager local)"
    )
    info(
        f"    MLflow:            .venv/bin/mlflow ui --backend-store-uri {get_settings().tracking_uri}  -> http://127.0.0.1:5000"
    )
    info(
        f"    scoring API:       .venv/bin/leadscore serve --model {logged['model_path']} --insecure-dev --port {port}  (docs: /docs)"
    )


def _call_service(model: Path, data: Path, port: int) -> tuple[str, str]:
    """Start the real service, make one real HTTP call with curl, stop it; return the answer."""
    import json
    import os
    import shutil
    import subprocess
    import sys
    import time
    import urllib.request

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
