"""The status page as a person sees it: Debian's Chromium, headless, driven by Playwright against
the daemon the test starts. Screenshots land in var/screenshots/ for a look by eye."""

from __future__ import annotations

import re
import shutil
import signal
import time
from pathlib import Path

import pytest

from tests.support import ROOT, Sink, mail, run_in_process, send
from tests.test_web import LINK, Site, site, wait_for  # noqa: F401 - the fixture is shared

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


# Everything that sticks out of the screen: the page scrolling sideways, or an element (a table
# cell in a scrolling box, say) whose right edge lies past the screen's.
OVERFLOW = """() => {
  const width = window.innerWidth, found = [];
  if (document.documentElement.scrollWidth > width) {
    found.push(`the page is ${document.documentElement.scrollWidth}px wide`);
  }
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (box.width > 0 && box.right > width + 0.5) {
      found.push(`${el.tagName} "${el.textContent.trim().slice(0, 40)}" ends at ${box.right}px`);
    }
  }
  return found;
}"""


def fits(page, name: str) -> list[str]:
    """What of this page does not fit a phone's width; a screenshot of it for a look by eye."""
    page.screenshot(path=str(SHOTS / f"phone-{name}.png"), full_page=True)
    return [f"{name}: {what}" for what in page.evaluate(OVERFLOW)]


def test_no_page_a_contact_reaches_scrolls_sideways_on_a_phone(page, site: Site):  # noqa: F811
    quiet = site.open_case("pat@initech.test", "Invoices export to the accounting system stalls")
    reference = site.open_case(
        "ann@initech.test", "Nightly synchronisation of warehouse stock fails"
    )
    too_wide = []
    page.goto(f"{site.base}/signin")
    too_wide += fits(page, "signin")
    sign_in(page, site, "pat@initech.test")
    page.wait_for_selector(f"text={reference}")
    too_wide += fits(page, "cases")
    page.goto(f"{site.base}/cases/{quiet}")
    too_wide += fits(page, "case")
    page.goto(f"{site.base}/reports")
    too_wide += fits(page, "report")
    page.goto(f"{site.base}/new")
    too_wide += fits(page, "new")
    page.goto(f"{site.base}/cases/HD-1999-99999")
    too_wide += fits(page, "error")
    page.goto(f"{site.base}/cases/{reference}")
    page.fill("#reason", "The warehouse cannot ship.")
    page.click("text=Escalate this case")
    page.wait_for_selector("text=Received")
    too_wide += fits(page, "received")
    assert not too_wide, "\n".join(too_wide)


def test_no_page_an_engineer_reaches_scrolls_sideways_on_a_phone(page, site: Site):  # noqa: F811
    site.open_case("jane@acme.test", "Urgent: the export of all customer invoices fails")
    reference = site.open_case("someone@elsewhere.test", "Printer queue on the third floor")
    sign_in(page, site, "alice@helpdesk.test")
    page.wait_for_selector(f"text={reference}")
    too_wide = fits(page, "queue")
    send(site.daemon.port, mail("alice@helpdesk.test", f"Re: [{reference}] x", "#escalate"))
    wait_for(lambda: site.show(reference)["escalation_level"] == 1)
    page.goto(f"{site.base}/cases/{reference}")
    too_wide += fits(page, "case-engineer")
    assert not too_wide, "\n".join(too_wide)
    # a level without a name: engineers are told whom it notified (customers never are)
    assert page.locator("dt:has-text('Escalated') + dd").inner_text() == "to lead@helpdesk.test"


def name_the_first_escalation_level(site: Site, name: str) -> None:  # noqa: F811
    """As an admin would: the file edited, then SIGHUP; returns once the daemon reloaded it."""
    config = site.daemon.config
    text = config.read_text()
    config.write_text(text.replace('on = "warn" }', f'on = "warn", name = "{name}" }}', 1))
    site.daemon.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 15
    while "configuration reloaded" not in site.daemon.log.read_text():
        assert time.monotonic() < deadline, "the daemon did not reload its configuration"
        time.sleep(0.1)


def test_times_name_their_zone_as_the_cli_does_and_escalation_says_to_whom(page, site: Site):  # noqa: F811
    name_the_first_escalation_level(site, "Team lead")
    # an unknown sender's case is on the standard plan: business hours in Chicago
    reference = site.open_case("someone@elsewhere.test", "Printer queue on the third floor")
    shown = run_in_process(site.daemon.config, "show", reference)
    deadline = re.search(r"first_response .*? deadline (\S+ \S+ [A-Z]+)", shown).group(1)
    received = re.search(r"(\S+ \S+ [A-Z]+)  <- customer", shown).group(1)
    sign_in(page, site, "someone@elsewhere.test")
    page.goto(f"{site.base}/cases/{reference}")
    escalated = page.locator("dt:has-text('Escalated') + dd")
    assert escalated.inner_text() == "no"
    text = page.inner_text("main")
    assert deadline in text and received in text, (deadline, received, text)
    assert "UTC-" not in text
    page.click("text=Escalate this case")
    page.wait_for_selector("text=Received")
    site.wait_messages(reference, 4)  # the request, its answer, the level told, the customer
    page.goto(f"{site.base}/cases/{reference}")
    assert escalated.inner_text() == "to Team lead"
