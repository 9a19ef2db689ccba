"""The console in headless Chromium (Debian's, driven by Playwright), at a desktop width and at a
phone's 390 px: every control, with a screenshot of each state in build/screenshots for review."""

import json
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
WIDTHS = {"desktop": {"width": 1280, "height": 900}, "mobile": {"width": 390, "height": 844}}
PRIMARY = "us.anthropic.claude-haiku-4-5-20251001-v1:0"


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: run `make browser` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture(params=list(WIDTHS))
def page(request, browser, served):
    served.reset()
    page = browser.new_page(viewport=WIDTHS[request.param])
    page.width_name = request.param
    page.goto(served.url + "/")
    yield page
    page.close()


def shot(page, name: str) -> None:
    # Nothing overflows sideways at this width, whatever the state shows (long model names too).
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTHS[page.width_name]["width"], name
    page.screenshot(path=str(SHOTS / f"{page.width_name}-{name}.png"), full_page=True)


def send(page, use_case: str, prompt: str | None = None) -> None:
    from playwright.sync_api import expect

    page.select_option("#use_case", use_case)
    if prompt is not None:
        page.fill("#prompt", prompt)
    with page.expect_response("**/v1/generate"):
        page.click("#send")
    expect(page.locator("#send")).to_be_enabled()


def test_the_page_fits_its_width_and_shows_every_circuit_from_the_start(page):
    from playwright.sync_api import expect

    expect(page).to_have_title(re.compile("FinAI platform console"))
    assert page.locator('link[rel="icon"]').get_attribute("href") == "/favicon.svg"
    expect(page.locator("#active")).to_have_text("us-east-1")
    # Closed circuits too, for every model the strategies route to, in both regions.
    closed = page.locator(f'#circuits tr[data-model="{PRIMARY}"]')
    expect(closed).to_have_count(2)
    expect(closed.first.locator("td").nth(2)).to_have_text("CLOSED")
    expect(page.locator('#regions tr[data-region="us-east-1"] td').nth(1)).to_have_text("healthy")
    expect(page.locator('#regions tr[data-region="us-east-1"] td').nth(2)).to_contain_text("HTTP 200, ok")
    expect(page.locator("#strategy_version")).not_to_have_text("-")
    # Nothing overflows sideways: region names stay on one line inside their tables' scroll boxes.
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTHS[page.width_name]["width"]
    lines = page.locator("#regions td.region").first.evaluate(
        "e => { const r = document.createRange(); r.selectNodeContents(e); return r.getClientRects().length; }"
    )
    assert lines == 1, "a region name wrapped"
    shot(page, "1-start")


def test_an_answer_a_sentiment_with_its_bars_and_a_sample_profile(page):
    from playwright.sync_api import expect

    send(page, "general", "What is compound interest?")
    expect(page.locator("#status")).to_have_text("200")
    expect(page.locator("#tier")).to_have_text("primary")
    expect(page.locator("#answer")).to_contain_text("Offline answer to: What is compound interest?")
    expect(page.locator("#usage")).to_contain_text(re.compile(r"\d+ in, \d+ out, 0\.\d{6} USD"))
    expect(page.locator("#request_id")).not_to_have_text("-")
    shot(page, "2-answer")

    page.fill("#prompt", "")
    page.select_option("#use_case", "sentiment")
    expect(page.locator("#prompt")).to_have_value(re.compile("profit warning"))  # the sample swaps in
    send(page, "sentiment")
    expect(page.locator("#model")).to_contain_text("sentiment-classifier-int8-")
    expect(page.locator("#sentiment")).to_contain_text("label: ")
    expect(page.locator("#sentiment .probs .bar")).to_have_count(3)  # one bar per label
    shot(page, "3-sentiment")

    page.select_option("#use_case", "budgeting_advice")
    expect(page.locator("#sample_profile")).to_be_visible()
    page.fill("#prompt", "")
    page.click("#sample_profile")
    expect(page.locator("#prompt")).to_have_value(re.compile("Monthly income: USD 4,200"))
    page.fill("#user_id", "grace")  # the advisor Lambda's arm of the local 80/20 split
    send(page, "budgeting_advice")
    expect(page.locator("#status")).to_have_text("200")
    expect(page.locator("#answer")).not_to_be_empty()
    shot(page, "4-budgeting")


def test_an_error_is_styled_as_an_error_with_its_status_and_request_id(page):
    from playwright.sync_api import expect

    page.fill("#api_key", "not-a-key")
    send(page, "general", "What is an ISA?")
    expect(page.locator("#status")).to_have_text("403")
    expect(page.locator("#answer")).to_have_class("error")
    expect(page.locator("#answer")).to_contain_text("Error 403: forbidden")
    expect(page.locator("#request_id")).not_to_have_text("-")
    shot(page, "5-error")


def test_chaos_opens_the_circuit_the_region_fails_over_and_reset_brings_it_back(page, served):
    from playwright.sync_api import expect

    page.select_option("#chaos_model", PRIMARY)
    page.select_option("#chaos_region", "us-east-1")
    page.fill("#error_rate", "1")
    with page.expect_response("**/admin/chaos"):
        page.click("#inject")
    expect(page.locator("#feedback")).to_contain_text(f"Injected: {PRIMARY} in us-east-1 fails 100%")
    expect(page.locator(f'#faults tr[data-fault="{PRIMARY}"]')).to_contain_text("100% ModelErrorException")
    send(page, "general", "What is compound interest?")
    expect(page.locator("#tier")).to_have_text("fallback")
    expect(page.locator("#answer")).to_contain_text("failed: ModelErrorException")
    for _ in range(5):  # the breaker's threshold: the circuit opens
        send(page, "general")
    circuit = page.locator(f'#circuits tr[data-model="{PRIMARY}"][data-region="us-east-1"] td').nth(2)
    expect(circuit).to_have_text("OPEN", timeout=10_000)
    shot(page, "6-circuit-open")

    # The region's model path is down: health says why, and the failover front moves on.
    expect(page.locator('#regions tr[data-region="us-east-1"] td').nth(2)).to_contain_text(
        "open circuits", timeout=15_000
    )
    expect(page.locator("#active")).to_have_text("us-west-2", timeout=15_000)
    send(page, "general")
    expect(page.locator("#region")).to_have_text("us-west-2")
    expect(page.locator("#tier")).to_have_text("primary")
    shot(page, "7-failover")

    with page.expect_response("**/admin/reset"):
        page.click("#reset")
    expect(page.locator("#feedback")).to_contain_text("circuits reset")
    expect(circuit).to_have_text("CLOSED", timeout=10_000)
    expect(page.locator("#faults")).to_contain_text("none: every model answers normally")


def test_a_region_taken_down_and_brought_up_from_the_console(page):
    from playwright.sync_api import expect

    expect(page.locator("#active")).to_have_text("us-east-1")
    with page.expect_response("**/admin/region/us-east-1/down"):
        page.click("#down")
    expect(page.locator("#feedback")).to_contain_text("Region us-east-1 taken down")
    row = page.locator('#regions tr[data-region="us-east-1"]')
    expect(row.locator("td").nth(1)).to_have_text("down")
    expect(row.locator("td").nth(2)).to_contain_text("taken down from the console", timeout=15_000)
    expect(page.locator("#active")).to_have_text("us-west-2", timeout=15_000)
    shot(page, "8-region-down")
    with page.expect_response("**/admin/region/us-east-1/up"):
        row.locator("button[data-up]").click()
    expect(page.locator("#feedback")).to_contain_text("Region us-east-1 brought up")
    expect(page.locator("#active")).to_have_text("us-east-1", timeout=30_000)


def test_streamed_answers_arrive_and_a_cut_stream_is_marked_partial(page):
    from playwright.sync_api import expect

    page.select_option("#use_case", "general")
    page.fill("#prompt", "What is an index fund?")
    page.click("#send_stream")
    expect(page.locator("#stream_state")).to_have_text("complete", timeout=30_000)
    expect(page.locator("#answer")).to_contain_text("Offline answer to: What is an index fund?")
    expect(page.locator("#ttft")).to_have_text(re.compile(r"\d+ ms"))

    page.select_option("#chaos_model", PRIMARY)
    page.select_option("#chaos_region", "us-east-1")
    page.select_option("#stream_fault", "cut")
    page.fill("#after_words", "3")
    with page.expect_response("**/admin/chaos"):
        page.click("#inject_stream")
    expect(page.locator("#feedback")).to_contain_text("Stream fault set: cut after 3 words")
    page.click("#send_stream")
    expect(page.locator("#stream_state")).to_contain_text("PARTIAL", timeout=30_000)
    expect(page.locator("#answer")).to_have_class("partial")
    shot(page, "9-stream-partial")


def test_publishing_a_strategy_switches_it_in_both_regions(page, served):
    from playwright.sync_api import expect

    page.wait_for_function("document.querySelectorAll('#strategy_choice option').length >= 2")
    page.select_option("#strategy_choice", "shipped (Bedrock)")
    with page.expect_response("**/admin/strategy"):
        page.click("#publish")
    shipped = json.loads((ROOT / "lambdas" / "shared" / "strategy" / "model_selection.json").read_text())["version"]
    expect(page.locator("#feedback")).to_contain_text(f'Published "shipped (Bedrock)" (version {shipped})')
    expect(page.locator("#strategy_version")).to_have_text(re.compile(rf"{re.escape(shipped)} \(AppConfig v\d+\)"))
    page.select_option("#strategy_choice", "local adapters")
    with page.expect_response("**/admin/strategy"):
        page.click("#publish")
    expect(page.locator("#feedback")).to_contain_text('Published "local adapters"')


def test_a_load_burst_shows_a_chart_and_a_table(page):
    from playwright.sync_api import expect

    page.select_option("#use_case", "product_question")
    page.fill("#load_count", "12")
    page.fill("#load_concurrency", "3")
    with page.expect_response("**/admin/load", timeout=60_000):
        page.click("#run_load")
    expect(page.locator('#load_table td[data-k="requests"]')).to_have_text("12")
    expect(page.locator('#load_table td[data-k="errors_5xx"]')).to_have_text("0")
    expect(page.locator('#load_table td[data-k="tiers"]')).to_contain_text("primary")
    expect(page.locator("#load_result svg.chart rect")).not_to_have_count(0)
    assert "{" not in page.locator("#load_result").inner_text()  # a table, not JSON
    shot(page, "10-load")


def test_the_clients_budget_and_spend_are_on_screen(page):
    from playwright.sync_api import expect

    send(page, "general", "What is an overdraft fee?")
    expect(page.locator("#budget_client")).to_contain_text("default")
    day = page.locator('#budget tr[data-counter="day-tokens"]')
    expect(day).to_contain_text("2,000,000")  # the shipped daily limit
    used = day.locator("td.used")
    expect(used).not_to_have_text("0")
    before = int(used.inner_text().replace(",", ""))
    send(page, "general")
    expect(used).not_to_have_text(f"{before:,}")  # the second answer is charged too
