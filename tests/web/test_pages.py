"""Sales' pages on a real server in a real headless Chromium (driven over the DevTools protocol):
sign in with a rep's key, the queue, a lead, reject it with a reason, see it leave the queue and the
decision land in the store; no console errors, nothing fetched from elsewhere, lead data escaped;
the card refused in another origin's frame unless that origin is allowed.

``LEADSCORE_SCREENSHOTS=docs/img`` keeps the pages' screenshots there (the README shows them)."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.monitoring.feedback import existing_store, load_store
from tests.helpers import (
    ADMIN_KEY,
    API_KEY,
    Trained,
    free_port,
    make_leads,
    private_env,
    rep_key_file,
    sign_in,
    start_server,
    stop,
    wait_ready,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
REP_KEY = "rep-key-dana-0123456789"
HOSTILE = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def served(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A server with a rep's key, leads scored by the CRM's key, and a page of another origin."""
    root = tmp_path_factory.mktemp("pages")
    keys = rep_key_file(root, REP_KEY, "Dana Ortiz")
    other = _other_origin(root)
    env = {
        **trained["env"],
        "LEADSCORE_API_KEYS": API_KEY,
        "LEADSCORE_ADMIN_KEYS": ADMIN_KEY,
        "LEADSCORE_API_KEY_FILE": str(keys),
        "LEADSCORE_DATABASE_URL": f"sqlite:///{root}/store.db",
        "LEADSCORE_FRAME_ANCESTORS": other["origin"],
    }
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(trained["model_path"], env, port, log=root / "server.log")
    try:
        wait_ready(url, proc)
        leads = _score_leads(url)
        yield {"url": url, "env": env, "root": root, "leads": leads, "other": other}
    finally:
        stop(proc)
        for server in other["servers"]:
            server.shutdown()
            server.server_close()


def _score_leads(url: str) -> list[dict[str, Any]]:
    """Leads sent by the CRM, twice (the second time with more activity: a history and changes)."""
    frame = make_leads(400, 95, fault_rate=0.0).head(150)
    records = json.loads(frame.to_json(orient="records", date_format="iso"))
    records[0]["job_title"] = HOSTILE
    headers = {"X-API-Key": API_KEY}
    first = httpx.post(f"{url}/v1/score/batch", json={"leads": records}, headers=headers, timeout=60)
    assert first.status_code == 200, first.text
    for r in records:
        for name in ("pricing_page_views_7d", "web_visits_30d"):
            if name in r and isinstance(r[name], int | float):
                r[name] = r[name] + 3
    again = httpx.post(f"{url}/v1/score/batch", json={"leads": records}, headers=headers, timeout=60)
    assert again.status_code == 200, again.text
    return list(again.json()["results"])


def _other_origin(root: Path) -> dict[str, Any]:
    """Two other origins (``localhost`` against the service's ``127.0.0.1``, the CRM's allowed and a
    stranger's) serving pages with frames from one folder."""
    folder = root / "other"
    folder.mkdir()

    def handler(*args: Any) -> http.server.SimpleHTTPRequestHandler:
        return http.server.SimpleHTTPRequestHandler(*args, directory=str(folder))

    servers = []
    for _ in range(2):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    crm, stranger = (f"http://localhost:{s.server_address[1]}" for s in servers)
    return {"servers": servers, "folder": folder, "origin": crm, "stranger": stranger}


def _watch(page: Any, home: str = "http://127.0.0.1") -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {"errors": [], "outside": []}
    page.on("console", lambda m: seen["errors"].append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.on(
        "request",
        lambda r: None if r.url.startswith((home, "data:")) else seen["outside"].append(r.url),
    )
    return seen


def _shot(page: Any, tmp: Path, name: str, *, full: bool = False) -> None:
    path = tmp / f"{name}.png"
    page.screenshot(path=str(path), full_page=full)
    keep = os.environ.get("LEADSCORE_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)


def _open_mqls(served: dict[str, Any]) -> list[str]:
    return [str(r["lead_id"]) for r in served["leads"] if r["mql"]]


def test_a_rep_signs_in_rejects_a_lead_and_it_leaves_the_queue(
    served: dict[str, Any], browser: Any, tmp_path: Path
) -> None:
    url = served["url"]
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    seen = _watch(page)
    page.goto(f"{url}/app/queue")
    assert "/app/sign-in" in page.url  # not signed in: the sign-in page
    page.fill("#key", API_KEY)  # the CRM's scoring key does not open the pages
    page.click("button[type=submit]")
    assert "does not open the pages" in page.inner_text("body")
    page.fill("#key", REP_KEY)
    page.click("button[type=submit]")
    assert page.url.endswith("/app/queue")
    cookie = next(c for c in page.context.cookies() if c["name"] == "leadscore_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    mqls = _open_mqls(served)
    assert mqls, "the synthetic leads should hold MQLs"
    _wait_for(lambda: len(page.locator("tr[data-lead]").all()) > 0, page)
    body = page.inner_text("body")
    assert "MQL queue" in body and "signed in as Dana Ortiz (rep)" in body
    listed = page.locator("tr[data-lead]").evaluate_all("rows => rows.map(r => r.dataset.lead)")
    assert set(listed) <= set(mqls) and len(listed) == min(len(mqls), 50)
    _shot(page, tmp_path, "app-queue")
    lead = listed[0]
    page.click(f"tr[data-lead='{lead}'] a")
    assert page.url.endswith(f"/app/leads/{lead}")
    body = page.inner_text("body")
    for part in ("Score history", "Why it changed", "Why this score", "Accept or reject"):
        assert part in body, part
    assert page.locator("svg").count() >= 2  # the gauge and the history line
    _shot(page, tmp_path, "app-lead", full=True)
    page.select_option("select[name=reason]", "duplicate")
    page.click("button.reject")
    assert "Decision recorded." in page.inner_text("body")
    assert lead not in page.locator("tr[data-lead]").evaluate_all("rows => rows.map(r => r.dataset.lead)")
    assert seen == {"errors": [], "outside": []}
    page.close()
    # what `train --feedback URL` reads: the page's decision is a training label at once
    stored = load_store(existing_store(served["env"]["LEADSCORE_DATABASE_URL"]))
    mine = stored[stored["lead_id"] == lead]
    assert list(mine["decision"]) == ["rejected"] and list(mine["reason"]) == ["duplicate"]
    assert list(mine["rep"]) == ["Dana Ortiz"]


def _wait_for(check: Any, page: Any, timeout: float = 20) -> None:
    """The score log is written a moment after the answers: reload until it shows."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the queue never showed the scored leads"
        time.sleep(0.3)
        page.reload()


def test_lead_data_is_text_forms_need_their_token_and_sign_ins_are_limited(served: dict[str, Any]) -> None:
    url = served["url"]
    hostile = str(served["leads"][0]["lead_id"])
    with httpx.Client(base_url=url, timeout=30) as web:
        form = web.get("/app/sign-in")
        assert form.status_code == 200 and "frame-ancestors 'none'" in form.headers["content-security-policy"]
        token = form.cookies["leadscore_signin"]
        for forged in ("forged", "fälscht"):  # a token with other than ASCII letters is simply wrong
            assert web.post("/app/sign-in", data={"key": REP_KEY, "csrf": forged}).status_code == 400
        signed = web.post(
            "/app/sign-in", data={"key": REP_KEY, "csrf": token, "next": "https://evil.example/"}
        )
        assert signed.status_code == 303 and signed.headers["location"] == "/app/queue"  # never elsewhere
        page = web.get(f"/app/leads/{hostile}")
        assert page.status_code == 200
        assert HOSTILE not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        assert (
            page.headers["x-frame-options"] == "DENY"
            and "script-src" not in page.headers["content-security-policy"]
        )
        refused = web.post(f"/app/leads/{hostile}/decision", data={"decision": "accepted"})  # no token
        assert refused.status_code == 403
        wrong = web.post(f"/app/leads/{hostile}/decision", data={"decision": "accepted", "csrf": "é"})
        assert wrong.status_code == 403
        assert web.get("/v1/model").status_code == 401  # a page session is not an API key
    for cookie in (b"forged.token", "forged.tokén".encode("latin-1")):  # as a browser may send bytes
        sent = httpx.get(f"{url}/app/queue", headers={b"cookie": b"leadscore_session=" + cookie})
        assert sent.status_code == 303
    with httpx.Client(base_url=url, timeout=30) as stranger:
        token = stranger.get("/app/sign-in").cookies["leadscore_signin"]
        codes = [
            stranger.post("/app/sign-in", data={"key": f"wrong-{k:020d}", "csrf": token}).status_code
            for k in range(11)
        ]
    assert codes[:10] == [200] * 10 and codes[10] == 429  # LEADSCORE_SIGNIN_ATTEMPTS: 10 in 5 minutes


def test_the_card_opens_only_in_the_crms_frame(served: dict[str, Any], browser: Any, tmp_path: Path) -> None:
    url, other = served["url"], served["other"]
    lead = str(served["leads"][1]["lead_id"])
    with private_env(served["env"]):
        made = CliRunner().invoke(app, ["card-link", lead, "--base-url", url, "--days", "1"])
    assert made.exit_code == 0, made.output
    link = made.stdout.strip()
    assert link.startswith(f"{url}/app/leads/{lead}/card?exp=")
    assert httpx.get(link, timeout=30).status_code == 200
    assert httpx.get(link.replace("sig=", "sig=0"), timeout=30).status_code == 401
    assert httpx.get(link.replace("sig=", "sig=%C3%A9"), timeout=30).status_code == 401
    (other["folder"] / "card.html").write_text(
        f'<iframe id="f" src="{link}" width="600" height="500"></iframe>'
    )
    (other["folder"] / "page.html").write_text(f'<iframe id="f" src="{url}/app/leads/{lead}"></iframe>')
    for origin, name, shown in (
        (other["origin"], "card.html", True),  # the CRM's origin, allowed by LEADSCORE_FRAME_ANCESTORS
        (other["stranger"], "card.html", False),  # another origin
        (other["origin"], "page.html", False),  # the full page is never framed
    ):
        page = browser.new_page()
        page.goto(f"{origin}/{name}")
        page.wait_for_timeout(500)
        frame = next(f for f in page.frames if f != page.main_frame)
        opened = frame.url.startswith(url) and "P(SQL)" in frame.inner_text("body")
        assert opened is shown, (origin, name, frame.url)
        if opened:
            _shot(page, tmp_path, "app-card")
        page.close()


def test_a_store_that_cannot_be_reached_is_a_page_that_says_so(trained: Trained, tmp_path: Path) -> None:
    """The database down: the pages answer 503 in one line (scoring goes on), never a traceback."""
    keys = rep_key_file(tmp_path, REP_KEY, "Dana Ortiz")
    nowhere = f"postgresql+psycopg://leadscore@127.0.0.1:{free_port()}/leadscore?connect_timeout=2"
    env = {**trained["env"], "LEADSCORE_API_KEYS": API_KEY, "LEADSCORE_API_KEY_FILE": str(keys),
           "LEADSCORE_DATABASE_URL": nowhere}  # fmt: skip
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(trained["model_path"], env, port, log=tmp_path / "server.log")
    try:
        wait_ready(url, proc)
        with httpx.Client(base_url=url, timeout=30) as web:
            sign_in(web, REP_KEY)
            for path in ("/app/queue", "/app/leads/7", "/app/queue?level=account"):
                down = web.get(path)
                assert down.status_code == 503 and "The store cannot be reached" in down.text, path
                assert "Traceback" not in down.text
        lead = make_leads(10, 3, fault_rate=0.0).head(1)
        body = json.loads(lead.to_json(orient="records", date_format="iso"))[0]
        scored = httpx.post(f"{url}/v1/score", json=body, headers={"X-API-Key": API_KEY}, timeout=30)
        assert scored.status_code == 200, scored.text  # scoring goes on
    finally:
        stop(proc)
