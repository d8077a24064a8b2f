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

pytestmark = pytest.mark.e2e

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


@pytest.fixture(scope="module")
def app(shop):
    data, _ = shop
    port = _free_port()
    env = {**os.environ, "TESSERA_DATA_DIR": str(data), TESSERA_USER: REVIEWER}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tessera.cli", "review", "--port", str(port), "--max-age", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(proc.stdout.read().decode(errors="replace")[-3000:])
            try:
                if requests.get(f"{url}/healthz", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.3)
        else:
            raise AssertionError("the review app did not start within 60 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


TESSERA_USER = "TESSERA_REVIEW_USER"


@pytest.fixture(scope="module")
def browser():
    found = _chromium()
    if not found:
        pytest.skip(
            "Chromium or chromedriver is not installed (apt-get install chromium "
            "chromium-driver; `make system-deps` does it as root) - browser test skipped"
        )
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


def test_approving_a_date_records_the_reviewer_for_deliveries(app, browser, shop) -> None:
    from selenium.webdriver.common.by import By

    from tessera.activations.approval import require_approval

    data, end = shop
    browser.get(f"{app}/date/{end}")
    browser.find_element(By.NAME, "note").send_keys("checked in the browser test")
    _click_and_wait(browser, browser.find_element(By.ID, "approve"))
    assert "approved" in _text(browser, "#message")
    assert _text(browser, "#approval-state") == "approved"
    assert REVIEWER in _text(browser, "#approval")
    _shot(browser, "06-approved")
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        row = con.execute(
            "select approved_by, note from activations.send_approvals where as_of_date = $d",
            {"d": end},
        ).fetchall()
        messages = con.execute(
            "select * from activations.outbound_messages where as_of_date = $d", {"d": end}
        ).df()
        require_approval(con, end, messages)  # what `deliveries` checks before it sends
    assert row == [(REVIEWER, "checked in the browser test")]


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
        for path in ("/calendar", f"/date/{end}", "/customer?customer_id=C0000001"):
            started = time.monotonic()
            response = requests.get(f"{app}{path}", timeout=20)
            assert response.status_code == 200, path
            assert time.monotonic() - started < 10
        browser.get(f"{app}/date/{end}")
        assert "a run is writing the warehouse" in _text(browser, "#snapshot")
        _shot(browser, "07-while-a-run-writes")
        forged = requests.post(
            f"{app}/date/{end}/approve", headers={"Origin": "https://evil.example"}, timeout=20
        )
        assert forged.status_code == 403
        refused = requests.post(f"{app}/date/{end}/approve", data={"note": "x"}, timeout=20)
        assert refused.status_code == 409
        assert "nothing was approved" in refused.text
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
