"""The review app in headless Chromium on a small shop's real daily run: every page, an
approval, and pages that load while another process holds the warehouse's write lock."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
import requests

NO_CHROMIUM = (
    "Chromium or chromedriver is not installed (apt-get install chromium chromium-driver; "
    "`make system-deps` does it as root) - browser test skipped"
)

ROOT = Path(__file__).resolve().parents[3]
#: Screenshots are kept as test artefacts (data/ is gitignored).
SHOTS = ROOT / "data" / "screenshots" / "review"
REVIEWER = "e2e-reviewer"
EXTERNAL_CUSTOMER = "C0000001"
HOLD = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("locked", flush=True)
sys.stdin.readline()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _chromium() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


# Skipped before any fixture builds the shop, Dagster and the app (minutes) for nothing.
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(_chromium() is None, reason=NO_CHROMIUM)]


@pytest.fixture(scope="module")
def shop(small_shop_landing: Path, small_shop_end: dt.date, tmp_path_factory):
    """Two campaign dates of the real daily job on a copy of the small shop (the second has
    campaign results to plot)."""
    data = tmp_path_factory.mktemp("review-data")
    shutil.copytree(small_shop_landing, data / "landing")
    # Another department's messages (by id and by address): they land, count against the caps
    # and show in the customer lookup.
    external = data / "landing" / "external_contacts"
    external.mkdir()
    sent = small_shop_end - dt.timedelta(days=2)
    (external / "service.csv").write_text(
        "customer_id,address,channel,sent_at,department,message_type,campaign,subject\n"
        f"{EXTERNAL_CUSTOMER},,email,{sent} 09:30,service,transactional,,Your parcel is on its way\n"
        f"{EXTERNAL_CUSTOMER},,sms,{sent} 10:00,service,transactional,,Delivery today\n"
    )
    mp = pytest.MonkeyPatch()
    mp.setenv("TESSERA_DATA_DIR", str(data))
    mp.setenv("DAGSTER_HOME", str(data / "dagster_home"))
    from tessera.orchestration.run_cli import run

    try:
        assert run(days=2, end=small_shop_end, full_each_day=False) == 0
    finally:
        mp.undo()
    return data, small_shop_end


#: The test's Dagster instance launches runs at once (make dev's daemon dequeues them instead).
RUN_NOW = """
run_coordinator:
  module: dagster._core.run_coordinator
  class: DefaultRunCoordinator
"""
JOB_QUERY = """{ pipelineOrError(params: {repositoryLocationName: "tessera",
  repositoryName: "__repository__", pipelineName: "approve_and_send"}) { __typename } }"""


def _wait_for(proc: subprocess.Popen, what: str, ready, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(proc.stdout.read().decode(errors="replace")[-3000:])
        try:
            if ready():
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{what} did not start within {seconds:.0f} s")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def dagster_ui(shop):
    """A Dagster webserver over the shop's instance and warehouse, sending to a local sink:
    where the app's approvals and holds go, through Dagster's GraphQL API."""
    from tessera.activations.sink import running_sink

    data, _ = shop
    home = data / "dagster_home"
    (home / "dagster.yaml").write_text((home / "dagster.yaml").read_text() + RUN_NOW)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with running_sink(data, with_events=False) as sink:
        env = {
            **os.environ,
            "TESSERA_DATA_DIR": str(data),
            "DAGSTER_HOME": str(home),
            "TESSERA_SINK_URL": sink.url,
        }
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster-webserver"), "-w", "workspace.yaml",
             "-h", "127.0.0.1", "-p", str(port)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip

        def job_loaded() -> bool:
            body = requests.post(f"{url}/graphql", json={"query": JOB_QUERY}, timeout=5).json()
            return body.get("data", {}).get("pipelineOrError", {}).get("__typename") == "Pipeline"

        try:
            _wait_for(proc, "dagster-webserver", job_loaded, 240)
            yield url
        finally:
            _stop(proc)


@pytest.fixture(scope="module")
def app(shop, dagster_ui):
    data, _ = shop
    from tessera.review.auth import User, hash_password, save_user

    save_user(data / "review-users.yml", User(REVIEWER, "approver", hash_password(PASSWORD)))
    port = _free_port()
    env = {**os.environ, "TESSERA_DATA_DIR": str(data)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tessera.cli", "review", "--port", str(port), "--max-age", "1",
         "--dagster-url", dagster_ui],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(proc, "the review app", lambda: requests.get(f"{url}/healthz", timeout=2).ok, 60)
        yield url
    finally:
        _stop(proc)


PASSWORD = "e2e password"


@pytest.fixture(scope="module")
def browser(app):
    found = _chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1500,1000",
        "--disable-background-networking",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=found[1]), options=options)
    driver.set_page_load_timeout(30)
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        _sign_in(driver, app)
        yield driver
    finally:
        driver.quit()


def _shot(driver, name: str) -> None:
    path = SHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 5_000


def _text(driver, css: str) -> str:
    """The text of the first element matching ``css``, waiting for it: a click that navigates
    returns before the next page is there."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    located = ec.presence_of_element_located((By.CSS_SELECTOR, css))
    return WebDriverWait(driver, 15).until(located).text


def _click_and_wait(driver, element) -> None:
    """Click ``element`` and wait until the page it was on is gone."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    def gone(_driver) -> bool:
        # Selenium's staleness_of expects StaleElementReferenceException only; while the next
        # page replaces the document, chromedriver may answer "Node with given id does not
        # belong to the document" instead (a flake seen in CI). Both mean the old page is gone.
        try:
            element.is_enabled()
        except WebDriverException:
            return True
        return False

    element.click()
    WebDriverWait(driver, 15).until(gone)


def _sign_in(driver, app: str) -> None:
    """Sign in as the reviewer through the sign-in page (screenshot of it kept)."""
    from selenium.webdriver.common.by import By

    driver.get(f"{app}/calendar")
    assert "Sign in" in _text(driver, "#page-title")  # every page needs a signed-in user
    driver.find_element(By.ID, "user").send_keys(REVIEWER)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    _shot(driver, "00-sign-in")
    _click_and_wait(driver, driver.find_element(By.ID, "sign-in"))
    assert _text(driver, "#signed-in") == f"{REVIEWER} (approver)"


def _session(driver) -> requests.Session:
    """A requests session with the browser's sign-in cookie."""
    session = requests.Session()
    for cookie in driver.get_cookies():
        session.cookies.set(cookie["name"], cookie["value"])
    return session


def _decide(driver, app: str, day: dt.date, button: str, note: str) -> str:
    """Click Approve or Hold on the date page; wait until its Dagster run ends; the run id."""
    from selenium.webdriver.common.by import By

    driver.get(f"{app}/date/{day}")
    driver.find_element(By.NAME, "note").send_keys(note)
    _click_and_wait(driver, driver.find_element(By.ID, button))
    assert "in Dagster as run" in _text(driver, "#message")
    run_id = driver.find_element(By.ID, "run-link").get_attribute("href").rsplit("/", 1)[1]
    deadline = time.monotonic() + 240
    status = ""
    while time.monotonic() < deadline:
        driver.get(f"{app}/date/{day}")
        status = _text(driver, "#run-status")
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(2)
    assert status == "SUCCESS", f"run {run_id} ended {status}"
    return run_id


def _materialized_in(data: Path, run_id: str) -> set[str]:
    """The asset keys the Dagster run materialized (read from the instance's run storage)."""
    from dagster import DagsterEventType, DagsterInstance

    with DagsterInstance.from_config(str(data / "dagster_home")) as instance:
        events = instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
        return {"/".join(e.dagster_event.asset_key.path) for e in events}


def _wait_for_state(driver, app: str, day: dt.date, state: str) -> None:
    """Reload the date page until the snapshot shows ``state`` (it refreshes once the run is
    over and the warehouse quiet)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        driver.get(f"{app}/date/{day}")
        if _text(driver, "#approval-state") == state:
            return
        time.sleep(1.5)
    raise AssertionError(f"the date page never showed {state!r}")


def test_calendar_shows_the_date_and_the_forward_plan(app, browser, shop) -> None:
    _, end = shop
    browser.get(f"{app}/calendar")
    assert "Calendar" in _text(browser, "#page-title")
    head = _text(browser, "#calendar thead")
    assert (end + dt.timedelta(days=1)).strftime("%d %b") in head  # tomorrow, from the plan
    assert (end - dt.timedelta(days=13)).strftime("%d %b") in head
    assert (end + dt.timedelta(days=1)).strftime("%d %B %Y") in _text(browser, "#tomorrow-title")
    assert "customers" in _text(browser, "#tomorrow")
    body = _text(browser, "#calendar tbody")
    assert any(ch.isdigit() and ch != "0" for ch in body)
    _shot(browser, "01-calendar")


def test_date_page_shows_labelled_segments_dry_run_and_quality(app, browser, shop) -> None:
    from selenium.webdriver.common.by import By

    _, end = shop
    browser.get(f"{app}/calendar")
    _click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, f'a[href="/date/{end}"]'))
    assert str(end) in _text(browser, "#page-title")
    first_segment = _text(browser, "#matrix tbody tr td.seg")
    assert "|" not in first_segment.splitlines()[0]
    assert "tenure" in first_segment  # the catalog's dimension, spelled out
    page = browser.find_element(By.TAG_NAME, "body").text
    assert "no audit for this date yet" not in _text(browser, "#collisions")
    for heading in ("Dry run", "Sample messages", "Exclusions by reason", "Data quality"):
        assert heading in page
    _shot(browser, "02-date")


def test_campaign_page_plots_lift_and_drivers(app, browser, shop) -> None:
    from selenium.webdriver.common.by import By

    data, end = shop
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        campaign = con.execute(
            "select r.campaign_id from activations.campaign_results r "
            "join campaigns.campaign_assignments a on a.campaign_id = r.campaign_id "
            "and a.as_of_date = $d and not a.is_control "
            "where r.abs_lift_ci_low is not null group by 1 order by count(*) desc limit 1",
            {"d": end},
        ).fetchall()[0][0]
    browser.get(f"{app}/campaign/{campaign}")
    assert "Does it work?" in browser.page_source
    lift = browser.find_element(By.CSS_SELECTOR, "#lift svg")
    assert lift.find_elements(By.TAG_NAME, "circle")  # a measured lift with its interval
    assert "top churn drivers" in browser.page_source
    _shot(browser, "03-campaign")


def test_customer_lookup_shows_why_a_customer_got_what_they_got(app, browser, shop) -> None:
    from selenium.webdriver.common.by import By

    data, end = shop
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        customer, campaign = con.execute(
            "select customer_id, campaign_id from activations.outbound_messages "
            "order by message_key limit 1"
        ).fetchall()[0]
    browser.get(f"{app}/customer")
    browser.find_element(By.ID, "customer-id").send_keys(customer)
    _click_and_wait(browser, browser.find_element(By.ID, "lookup"))
    assert campaign in _text(browser, "#messages")
    assert "Exclusions" in browser.page_source
    _shot(browser, "04-customer")


def test_programme_shows_the_uplift_against_the_global_control(app, browser) -> None:
    # The demo catalog holds out a global control group: the programme is measured.
    browser.get(f"{app}/programme")
    headline = _text(browser, "#programme-headline")
    assert "global control" in headline and "95% interval" in headline
    _shot(browser, "05-programme")


def test_approving_a_date_runs_send_approval_and_deliveries_in_dagster(app, browser, shop) -> None:
    from tessera.activations.approval import require_approval

    data, end = shop
    run_id = _decide(browser, app, end, "approve", "checked in the browser test")
    assert _materialized_in(data, run_id) == {
        "activations/send_approvals",
        "activations/deliveries",
    }
    _wait_for_state(browser, app, end, "approved")
    assert REVIEWER in _text(browser, "#approval")
    assert "review-app" in _text(browser, "#history")
    _shot(browser, "06-approved")
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        row = con.execute(
            "select approved_by, note from activations.send_approvals where as_of_date = $d",
            {"d": end},
        ).fetchall()
        audit = con.execute(
            "select action, actor, via, run_id from audit.approvals where as_of_date = $d",
            {"d": end},
        ).fetchall()
        messages = con.execute(
            "select * from activations.outbound_messages where as_of_date = $d", {"d": end}
        ).df()
        require_approval(con, end, messages)  # what `deliveries` checks before it sends
    assert row == [(REVIEWER, "checked in the browser test")]
    assert audit == [("approve", REVIEWER, "review-app", run_id)]


def test_holding_a_date_withdraws_its_approval_through_dagster(app, browser, shop) -> None:
    data, end = shop
    run_id = _decide(browser, app, end, "hold", "wrong offer")
    assert _materialized_in(data, run_id) == {"activations/send_approvals"}
    _wait_for_state(browser, app, end, "on hold")
    assert "wrong offer" in _text(browser, "#approval")
    _shot(browser, "06b-held")
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        actions = con.execute(
            "select action from audit.approvals where as_of_date = $d order by recorded_at",
            {"d": end},
        ).fetchall()
    assert actions == [("approve",), ("hold",)]


def test_pages_load_while_another_process_writes_the_warehouse(app, browser, shop) -> None:
    data, end = shop
    writer = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(data / "warehouse.duckdb")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "locked"
        time.sleep(1.1)  # past --max-age: the app tries to refresh and finds the file locked
        session = _session(browser)
        for path in ("/calendar", f"/date/{end}", "/customer?customer_id=C0000001"):
            started = time.monotonic()
            response = session.get(f"{app}{path}", timeout=20, allow_redirects=False)
            assert response.status_code == 200, path
            assert time.monotonic() - started < 10
        browser.get(f"{app}/date/{end}")
        assert "a run is writing the warehouse" in _text(browser, "#snapshot")
        _shot(browser, "07-while-a-run-writes")
        session = _session(browser)
        forged = session.post(
            f"{app}/date/{end}/decide", headers={"Origin": "https://evil.example"}, timeout=20
        )
        assert forged.status_code == 403  # another site's page cannot decide as the reviewer
        anonymous = requests.post(f"{app}/date/{end}/decide", data={"action": "hold"}, timeout=20)
        assert anonymous.status_code == 401
    finally:
        writer.communicate("\n", timeout=30)


def test_customer_lookup_lists_other_departments_messages(app, browser) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{app}/customer")
    browser.find_element(By.ID, "customer-id").send_keys(EXTERNAL_CUSTOMER)
    _click_and_wait(browser, browser.find_element(By.ID, "lookup"))
    external = _text(browser, "#external")
    assert "Your parcel is on its way" in external and "Delivery today" in external
    assert "service" in external
    _shot(browser, "08-customer-external-contacts")
