"""The web UI in headless Chromium (Debian's, driven by Playwright): submit a query and see the
answer, inject a fault and watch the fallback and the circuit change on screen. Screenshots are
kept in build/screenshots as test artifacts."""

import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "build" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def page():
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: run `make browser` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        yield page
        browser.close()


def test_query_fault_fallback_and_circuit_on_screen(served, page):
    from playwright.sync_api import expect

    served.reset()
    page.goto(served.url + "/")
    page.select_option("#use_case", "general")
    page.fill("#prompt", "What is compound interest?")
    page.click("#send")
    expect(page.locator("#status")).to_have_text("200")
    expect(page.locator("#tier")).to_have_text("primary")
    expect(page.locator("#answer")).to_contain_text("Offline answer to: What is compound interest?")
    expect(page.locator("#region")).to_have_text("us-east-1")
    page.screenshot(path=str(SHOTS / "1-answer.png"), full_page=True)

    # Inject a 100% fault on the primary model; the next answers come from the fallback tier.
    page.select_option("#chaos_model", "us.anthropic.claude-haiku-4-5-20251001-v1:0")
    page.fill("#error_rate", "1")
    with page.expect_response("**/admin/chaos"):  # the UI posts asynchronously; wait for the fault
        page.click("#inject")
    page.click("#send")
    expect(page.locator("#tier")).to_have_text("fallback")
    expect(page.locator("#model")).to_have_text("us.amazon.nova-micro-v1:0")
    for _ in range(5):  # the breaker's threshold: the circuit opens
        page.click("#send")
        expect(page.locator("#status")).to_have_text("200")
    circuit = page.locator('#circuits tr[data-model="us.anthropic.claude-haiku-4-5-20251001-v1:0"] td').nth(2)
    expect(circuit).to_have_text("OPEN", timeout=10_000)
    page.screenshot(path=str(SHOTS / "2-circuit-open.png"), full_page=True)

    # The region's model path is down: the failover front moves to the other region.
    expect(page.locator("#active")).to_have_text("us-west-2", timeout=15_000)
    page.click("#send")
    expect(page.locator("#region")).to_have_text("us-west-2")
    expect(page.locator("#tier")).to_have_text("primary")
    page.screenshot(path=str(SHOTS / "3-failover.png"), full_page=True)


def test_sentiment_shows_its_label_and_probabilities(served, page):
    from playwright.sync_api import expect

    served.reset()
    page.goto(served.url + "/")
    page.select_option("#use_case", "sentiment")
    # Switching use case swaps in that use case's sample text while the box holds a sample.
    expect(page.locator("#prompt")).to_have_value(re.compile("profit warning"))
    page.click("#send")
    expect(page.locator("#status")).to_have_text("200")
    expect(page.locator("#model")).to_contain_text("sentiment-classifier-int8-")
    expect(page.locator("#sentiment")).to_contain_text("label: ")
    expect(page.locator("#sentiment")).to_contain_text("negative ")  # every label's probability
    page.screenshot(path=str(SHOTS / "4-sentiment.png"), full_page=True)


def test_load_page_reports_percentiles_and_tiers(served, page):
    page.goto(served.url + "/")
    page.fill("#load_count", "12")
    page.fill("#load_concurrency", "3")
    page.click("#run_load")
    result = page.locator("#load_result")
    result.filter(has_text="p95_ms").wait_for(timeout=60_000)
    text = result.inner_text()
    assert '"requests": 12' in text and '"errors_5xx": 0' in text and '"tiers"' in text
    page.screenshot(path=str(SHOTS / "4-load.png"), full_page=True)


def test_the_clients_budget_and_spend_are_on_screen(served, page):
    from playwright.sync_api import expect

    served.reset()
    page.goto(served.url + "/")
    page.select_option("#use_case", "general")
    page.fill("#prompt", "What is an overdraft fee?")
    page.click("#send")
    expect(page.locator("#status")).to_have_text("200")
    expect(page.locator("#usage")).to_contain_text(re.compile(r"\d+ in, \d+ out, 0\.\d{6} USD"))
    expect(page.locator("#budget_client")).to_contain_text("default")
    day = page.locator('#budget tr[data-counter="day-tokens"]')
    expect(day).to_contain_text("2,000,000")  # the shipped daily limit
    used = day.locator("td.used")
    expect(used).not_to_have_text("0")
    before = int(used.inner_text().replace(",", ""))
    page.click("#send")
    expect(used).not_to_have_text(f"{before:,}")  # the second answer is charged too
    expect(page.locator('#budget tr[data-counter="month-cost"]')).to_contain_text("USD")
    page.screenshot(path=str(SHOTS / "5-budget.png"), full_page=True)


PRIMARY = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
GROWING = (
    "() => document.getElementById('stream_state').textContent === 'streaming'"
    " && document.getElementById('answer').textContent.length > 0"
)


def test_a_stream_grows_on_screen_and_a_cut_one_is_shown_as_partial(served, page):
    from playwright.sync_api import expect

    served.reset()
    # The stand-in streams a word every 120 ms, so the page can be seen mid-answer.
    served.admin("/admin/chaos", {"model": PRIMARY, "error_rate": 0, "latency_ms": 0, "pace_ms": 120})
    page.goto(served.url + "/")
    page.select_option("#use_case", "general")
    page.fill("#prompt", "What is compound interest, and how does it differ from simple interest?")
    page.click("#send_stream")
    page.wait_for_function(GROWING, timeout=15_000)
    partway = page.locator("#answer").inner_text()
    expect(page.locator("#tier")).to_have_text("primary")
    page.screenshot(path=str(SHOTS / "6-streaming.png"), full_page=True)
    expect(page.locator("#stream_state")).to_have_text("complete", timeout=20_000)
    whole = page.locator("#answer").inner_text()
    assert len(whole) > len(partway) and whole.startswith(partway)  # the same text, grown
    assert "Offline answer to: What is compound interest" in whole
    expect(page.locator("#answer")).not_to_have_class("partial")
    expect(page.locator("#usage")).to_contain_text(re.compile(r"\d+ in, \d+ out"))

    # The same question with the primary's stream cut after four words: shown as partial, not whole.
    page.select_option("#chaos_model", PRIMARY)
    page.select_option("#stream_fault", "cut")
    page.fill("#after_words", "4")
    page.fill("#pace_ms", "60")
    with page.expect_response("**/admin/chaos"):
        page.click("#inject_stream")
    page.click("#send_stream")
    expect(page.locator("#stream_state")).to_contain_text("PARTIAL", timeout=20_000)
    expect(page.locator("#stream_state")).to_contain_text("truncated")
    expect(page.locator("#answer")).to_have_class("partial")
    assert len(page.locator("#answer").inner_text().split()) == 4  # exactly what was sent, nothing stitched on
    page.screenshot(path=str(SHOTS / "7-stream-cut.png"), full_page=True)
    served.admin("/admin/heal")
