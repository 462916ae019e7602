"""The status page as a person sees it: Debian's Chromium, headless, driven by Playwright against
the daemon the test starts. Screenshots land in var/screenshots/ for a look by eye."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support import ROOT, Sink
from tests.test_web import LINK, Site, site  # noqa: F401 - the fixture is shared

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = ROOT / "var" / "screenshots"
# As root in a container, and with no network: nothing to sandbox against, nothing to fetch.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.browser,
    pytest.mark.timeout(180),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        context = browser.new_context(viewport={"width": 390, "height": 844})  # a phone
        yield context.new_page()
        browser.close()


def sign_in(page, site: Site, address: str) -> None:  # noqa: F811
    sink: Sink = site.sink
    page.goto(f"{site.base}/signin")
    page.fill("#address", address)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Check your mail")
    mailed = sink.wait_for(lambda m: address in str(m["To"]) and "sign-in" in str(m["Subject"]))
    link = LINK.search(mailed[-1].get_body(("plain",)).get_content()).group(0)
    page.goto(link)
    page.click("text=Sign in now")


def test_a_customer_signs_in_replies_with_a_file_and_sees_it(page, site: Site, tmp_path):  # noqa: F811
    reference = site.open_case("jane@acme.test", "Export fails", "The CSV export stops at 50%.")
    sign_in(page, site, "jane@acme.test")
    page.wait_for_selector(f"text={reference}")
    page.screenshot(path=str(SHOTS / "cases.png"), full_page=True)
    page.click(f"text={reference}")
    page.wait_for_selector("text=Service targets")
    log = tmp_path / "export.log"
    log.write_text("stopped at row 5000\n")
    page.fill("#text", "The log is attached.")
    page.set_input_files("#files", str(log))
    page.click("text=Send reply")
    page.wait_for_selector("text=Received")
    site.wait_messages(reference, 4)
    page.goto(f"{site.base}/cases/{reference}")
    assert page.is_visible("text=The log is attached.")
    assert page.is_visible("text=export.log")
    page.screenshot(path=str(SHOTS / "case.png"), full_page=True)
    page.screenshot(path=str(SHOTS / "case-phone.png"))  # what a phone shows first


def test_a_primary_contact_reads_the_monthly_report_with_its_charts(page, site: Site):  # noqa: F811
    site.open_case("ann@initech.test", "Slow dashboard")
    site.open_case("ann@initech.test", "Outage in the night", "Everything was down.")
    sign_in(page, site, "pat@initech.test")
    page.goto(f"{site.base}/reports")
    page.wait_for_selector("svg.chart")
    assert page.locator("svg.chart").count() >= 3
    assert page.locator("svg.chart rect").count() >= 9
    page.screenshot(path=str(SHOTS / "report.png"), full_page=True)
