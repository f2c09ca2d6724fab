"""The operator console and the API docs in a real browser: Debian's Chromium driven
by Playwright, against the stack `make run` starts (supervisord, PostgreSQL, Redis,
real workers and the fake gateway). Screenshots of the dashboard and of a payout go
to TEST_ARTIFACTS (default .run/artifacts)."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.builders import SETTLING_CARDS
from tests.support import REQUIRE_SERVICES
from tools.stack import ROOT, Stack, wait_for

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.e2e]

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", ROOT / ".run" / "artifacts"))
TERMINAL = {"completed", "failed", "cancelled"}


def card_body(number: str, amount: str = "25.00") -> dict[str, Any]:
    return {
        "amount": amount,
        "currency": "EUR",
        "recipient_details": {"type": "card", "number": number, "holder": "Ada"},
        "description": "browser test",
    }


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not shutil.which(CHROMIUM):
        message = f"needs Chromium at {CHROMIUM} (apt-get install chromium)"
        if REQUIRE_SERVICES:
            pytest.fail(f"{message}, and REQUIRE_SERVICES=1 forbids skipping")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, browser: Browser
) -> Iterator[Stack]:
    """The stack with a history to look at: payouts completed, failed and pending
    (a pending one stays pending: its card is held by the gateway for a while)."""
    with Stack.running(tmp_path_factory.mktemp("console"), "browser") as running:
        with running.client() as client:
            ids = [
                client.post("/api/v1/payouts/", json=card_body(number)).json()["id"]
                for number in SETTLING_CARDS * 2
            ]

            def settled() -> bool:
                statuses = [
                    client.get(f"/api/v1/payouts/{i}/").json()["status"] for i in ids
                ]
                return all(s in TERMINAL for s in statuses)

            wait_for(settled, 60, "the payouts to settle", interval=0.5)
            wait_for(
                lambda: client.get(
                    "/api/v1/payouts/", params={"status": "completed"}
                ).json()["results"],
                30,
                "the projection",
            )
        yield running


@pytest.fixture
def page(browser: Browser, stack: Stack) -> Iterator[Page]:
    context = browser.new_context(
        base_url=stack.web_url, viewport={"width": 1400, "height": 1000}
    )
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    yield opened
    context.close()


def log_in(page: Page, stack: Stack) -> None:
    page.goto("/admin/login/")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", stack.admin_password)
    page.locator(
        "form#login-form button[type=submit], form button[type=submit]"
    ).first.click()
    try:
        page.wait_for_selector("#dashboard")
    except Exception:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=ARTIFACTS / "login-failed.png", full_page=True)
        raise


def pending_payout(stack: Stack) -> str:
    """A payout that stays pending: created while the worker is stopped (the caller
    starts it again)."""
    stack.stop("worker")
    with stack.client() as client:
        payout_id = client.post(
            "/api/v1/payouts/", json=card_body(SETTLING_CARDS[0], "7.00")
        ).json()["id"]

        def projected() -> bool:
            listed = client.get("/api/v1/payouts/", params={"status": "pending"})
            return any(p["id"] == payout_id for p in listed.json()["results"])

        wait_for(projected, 30, "the pending payout in the projection")
    return payout_id


def test_an_operator_logs_in_and_the_dashboard_charts_real_figures(
    page: Page, stack: Stack
) -> None:
    # when
    log_in(page, stack)
    # then: the status cards hold the projection's counts, and both charts drew
    assert page.locator("[data-status=completed]").inner_text() != "0"
    assert page.locator("[data-status=failed]").inner_text() != "0"
    charts = page.locator("canvas.chart")
    assert charts.count() == 2
    page.wait_for_function(
        "() => [...document.querySelectorAll('canvas.chart')]"
        ".every(c => window.Chart && Chart.getChart(c))"
    )
    drawn = page.evaluate(
        "() => [...document.querySelectorAll('canvas.chart')].map(c => "
        "Chart.getChart(c).data.datasets.map(d => d.data.reduce((a, b) => a + b, 0)))"
    )
    assert drawn[0][0] >= len(SETTLING_CARDS) * 2  # created in the last hour
    assert drawn[0][1] >= len(SETTLING_CARDS) * 2  # settled in the last hour
    assert page.locator("[data-lag=projection]").inner_text() == "caught up"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / "dashboard.png", full_page=True)


def test_an_operator_filters_the_list_and_reads_a_payouts_history(
    page: Page, stack: Stack
) -> None:
    # given
    log_in(page, stack)
    # when: from the dashboard's "Completed" card to the filtered list
    page.click("a:has([data-status=completed])")
    page.wait_for_url(re.compile(r"status__exact=completed"))
    rows = page.locator("#result_list tbody tr")
    assert rows.count() >= 1
    statuses = {
        text.strip().lower()
        for text in rows.locator("td.field-show_status").all_inner_texts()
    }
    assert statuses == {"completed"}
    rows.first.locator("th a, td a").first.click()
    # then: the payout's page, its card masked and its history from the event store
    page.wait_for_url(re.compile(r"/change/"))
    history = page.locator("table:has(th:text('Event'))").inner_text()
    for event in ("Created", "ProcessingStarted", "Completed"):
        assert event in history
    assert "424242******4242" in page.content() or "411111******1111" in page.content()
    assert not any(card in page.content() for card in SETTLING_CARDS)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / "payout.png", full_page=True)


def test_an_operator_cancels_a_pending_payout_and_the_history_grows(
    page: Page, stack: Stack
) -> None:
    # given: a payout nobody is processing
    payout_id = pending_payout(stack)
    try:
        log_in(page, stack)
        page.goto("/admin/projections/payoutview/?status__exact=pending")
        # when: selected, and the cancel action run on it
        page.check(f"input[name=_selected_action][value='{payout_id}']")
        page.select_option("select[name=action]", "cancel_payouts")
        page.click("button[name=index]")
        # then: the action says what it did, and the ledger has the event
        page.get_by_text(f"Cancel {payout_id}: cancelled").wait_for()
        page.goto(f"/admin/projections/payoutview/{payout_id}/change/")
        history = page.locator("table:has(th:text('Event'))").inner_text()
        assert "Cancelled" in history
        assert "user: admin" in history
    finally:
        stack.start("worker")


def test_swagger_ui_loads_from_this_server_and_creates_a_payout_with_an_api_key(
    page: Page, stack: Stack
) -> None:
    # given: every request the page makes is recorded
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto("/api/v1/docs/")
    page.wait_for_selector(".swagger-ui .information-container")
    # when: authorised with an API key, "Try it out" on the create operation
    page.click("button.authorize")
    dialog = page.locator("form", has_text="ApiKey (http, Bearer)")
    dialog.locator("#auth-bearer-value").fill(stack.api_key)
    dialog.locator("button.authorize").click()
    page.click("button.btn-done, button.close-modal")
    create = page.locator(".opblock-post", has_text="/api/v1/payouts/").first
    create.locator(".opblock-summary").click()
    create.locator("button.try-out__btn").click()
    body = create.locator("textarea.body-param__text")
    body.fill(json.dumps(card_body(SETTLING_CARDS[0], "12.34")))
    create.locator("button.execute").click()
    # then
    status = create.locator(
        ".live-responses-table tr.response .response-col_status"
    ).first
    status.wait_for()
    assert status.inner_text().strip().startswith("201")
    assert "12.34" in create.locator(".live-responses-table").inner_text()
    foreign = [url for url in requested if not url.startswith(stack.web_url)]
    assert foreign == []
