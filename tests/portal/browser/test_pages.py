"""The portal in a real browser, as its users meet it: a requester signs in, writes a dev request
with a mistake and sees the message next to the field, fixes it, sees the plan, verdict and cost,
submits; the dev run streams live to its outputs. A staging request waits for an approver other
than the requester; the approver approves it from the inbox. A user of another group sees none of
it. Every page passes an axe-core scan (no critical or serious violation) under the portal's CSP."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from hpc_platform.app.portal.forms import dom_id
from tests.portal.browser.conftest import SLOW_MS, Portal, User

QUEUE_NAME = "hpc:cluster.queues[0].name"


def shot(page: Page, screenshots: Path, name: str, *, full_page: bool = True) -> None:
    page.screenshot(path=str(screenshots / f"{name}.png"), full_page=full_page)


def clean(user: User, what: str) -> None:
    violations = user.axe()
    assert not violations, f"{what}: axe found {violations}"
    assert not user.csp_errors, f"{what}: CSP violations {user.csp_errors}"


def request_id(page: Page) -> int:
    match = re.search(r"/requests/(\d+)$", page.url)
    assert match, page.url
    return int(match.group(1))


def wait_for_state(user: User, rid: int, state: str) -> None:
    """Reload the request page until the worker has moved the request to `state`."""
    for _ in range(SLOW_MS // 1000):
        user.goto(f"/requests/{rid}")
        if user.page.locator("#request-state").inner_text() == state:
            return
        user.page.wait_for_timeout(1000)
    raise AssertionError(f"request {rid} never reached {state}")


def follow_run(
    user: User, rid: int, operation: str, screenshots: Path | None = None, live: bool = False
) -> None:
    """Open the request's `operation` run and watch it stream to the end (`live`: the run was
    still going when the page opened, so its events arrived over SSE)."""
    user.goto(f"/requests/{rid}")
    link = user.page.get_by_role("link", name=re.compile(rf"Run #\d+: {operation}"))
    for _ in range(120):
        if link.count():
            break
        user.page.wait_for_timeout(500)
        user.page.reload()
    link.first.click()
    page = user.page
    expect(page.get_by_role("heading", name=re.compile(rf"Run #\d+: {operation}"))).to_be_visible()
    if live:
        assert page.locator("[sse-connect]").count() == 1, "the run had ended before its page opened"
    expect(page.locator("#run-result")).to_have_text("succeeded", timeout=SLOW_MS)
    events = page.locator("#events li")
    expect(page.locator("#events")).to_contain_text("summary: ")
    seqs = [int(s) for s in events.evaluate_all("items => items.map(i => i.dataset.seq)")]
    assert seqs == sorted(set(seqs)) and len(seqs) > 3, seqs  # each event once, in order
    if screenshots is not None:
        shot(page, screenshots, "run")
    clean(user, "run page")


def test_request_plan_approve_and_run_in_the_browser(
    browser: Browser, portal: Portal, screenshots: Path
) -> None:
    rita = User(browser, portal, "rita")
    page = rita.page

    # Sign-in page at /, clearly local.
    rita.goto("/")
    expect(page.get_by_role("heading", name="Local sign-in")).to_be_visible()
    shot(page, screenshots, "signin")
    clean(rita, "sign-in page")
    rita.sign_in()
    clean(rita, "environments page (empty)")

    # 1. A dev environment and a request with a mistake: the message appears next to its field.
    page.get_by_label("Name", exact=True).fill("gen-dev")
    page.get_by_label("Kind").select_option("dev")
    page.get_by_label("Time-to-live (hours, dev only)").fill("48")
    page.get_by_role("button", name="Create and write its first request").click()
    expect(page.get_by_role("heading", name=re.compile("Request for gen-dev"))).to_be_visible()
    clean(rita, "request form")
    queue_name = page.locator(f"#{dom_id(QUEUE_NAME)}")
    queue_name.fill("Compute-Spot")
    problem = page.locator(f"#{dom_id(QUEUE_NAME)}-err")
    expect(problem).to_contain_text(
        "'Compute-Spot' is not a valid ParallelCluster queue/compute-resource name"
    )
    # The message is tied to the field for assistive technology, too.
    assert f"{dom_id(QUEUE_NAME)}-err" in (queue_name.get_attribute("aria-describedby") or "")
    queue_name.scroll_into_view_if_needed()
    shot(page, screenshots, "request-problem", full_page=False)
    clean(rita, "request form with a problem")

    # 2. Fixed: the problem goes; plan, verdict and cost; submit.
    queue_name.fill("compute-spot")
    expect(problem).to_be_empty()
    page.get_by_role("button", name="Check plan, verdict and cost").click()
    assessment = page.locator("#assessment")
    expect(assessment.get_by_role("heading", name=re.compile(r"^Plan: \d+ resources"))).to_be_visible()
    expect(assessment.get_by_role("heading", name=re.compile("^Policy verdict"))).to_be_visible()
    expect(
        assessment.get_by_role("heading", name=re.compile(r"^Cost estimate: \$[\d,.]+ a month"))
    ).to_be_visible()
    expect(assessment.get_by_role("heading", name="Performance model")).to_be_visible()
    # The change against the current stack: a new stack, so each key is added.
    changes = assessment.get_by_role("table", name=re.compile("changed key"))
    expect(changes.get_by_role("rowheader", name="hpc:cluster", exact=True)).to_be_visible()
    assessment.scroll_into_view_if_needed()
    shot(page, screenshots, "request-plan", full_page=False)
    clean(rita, "request form with the plan")
    page.get_by_role("button", name="Submit request").click()
    dev_request = request_id(page)
    expect(page.get_by_role("heading", name=re.compile(r"^Plan: \d+ resources"))).to_be_visible()

    # 4. Dev is approved by the setting: the up run streams live to its outputs, secrets masked.
    wait_for_state(rita, dev_request, "applying")
    follow_run(rita, dev_request, "up", screenshots, live=True)
    outputs = page.locator("#outputs")
    expect(outputs.get_by_role("table")).to_be_visible()
    expect(outputs).to_contain_text("dbPassword")
    expect(outputs).to_contain_text("[secret]")
    assert "hunter2-not-shown" not in page.content()
    wait_for_state(rita, dev_request, "applied")
    clean(rita, "applied request")

    rita.goto("/environments")
    row = page.get_by_role("row", name=re.compile("gen-dev"))
    expect(row).to_contain_text("ready")
    expect(row).to_contain_text("(deployed)")
    expect(row).to_contain_text("until")  # the time-to-live started with the first apply
    shot(page, screenshots, "environments")
    clean(rita, "environments page")
    rita.goto("/environments/gen-dev")
    clean(rita, "environment page")
    rita.goto("/environments/gen-dev/audit")
    expect(page.get_by_role("cell", name="request.applied")).to_be_visible()
    clean(rita, "audit page")

    # 3. Staging waits for an approver other than the requester, even one who is an approver.
    rita.goto("/environments")
    page.get_by_label("Name", exact=True).fill("gen-staging")
    page.get_by_label("Kind").select_option("staging")
    page.get_by_role("button", name="Create and write its first request").click()
    page.get_by_role("button", name="Submit request").click()
    staging_request = request_id(page)
    wait_for_state(rita, staging_request, "awaiting_approval")
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    expect(page.locator("#why-not")).to_contain_text("need an approver other than the requester")
    # Nor can she post the decision by hand: the flow refuses it as the API would.
    csrf = page.locator("input[name=csrf_token]").first.input_value()
    forced = page.request.post(
        f"{portal.url}/requests/{staging_request}/decide", form={"csrf_token": csrf, "decision": "approve"}
    )
    assert forced.status == 403, forced.status
    rita.goto("/approvals")
    expect(page.get_by_text("Nothing is waiting for you.")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Local sign-in")).to_be_visible()
    rita.close()

    alan = User(browser, portal, "alan")
    alan.sign_in()
    alan.goto("/approvals")
    inbox = alan.page.get_by_role("row", name=re.compile("gen-staging"))
    expect(inbox).to_be_visible()
    shot(alan.page, screenshots, "approvals")
    clean(alan, "approvals inbox")
    inbox.get_by_role("link").click()
    plan_sha = alan.page.locator("#bound-plan").inner_text()
    assert re.fullmatch(r"[0-9a-f]{64}", plan_sha), plan_sha  # bound to the saved plan
    expect(alan.page.locator("#bound-config")).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
    clean(alan, "request page for an approver")
    alan.page.get_by_label("Comment").fill("Looks right for the March runs.")
    alan.page.get_by_role("button", name="Approve").click()
    expect(alan.page.get_by_role("status")).to_contain_text("approved; its up is queued")
    follow_run(alan, staging_request, "up")
    wait_for_state(alan, staging_request, "applied")
    expect(alan.page.get_by_text("Looks right for the March runs.")).to_be_visible()
    alan.close()

    # 5. Another group's user sees none of it.
    eve = User(browser, portal, "eve")
    eve.sign_in()
    expect(eve.page.get_by_text("No environments in your groups yet.")).to_be_visible()
    for path in (
        "/environments/gen-dev",
        f"/requests/{dev_request}",
        f"/requests/{staging_request}",
        "/runs/1",
    ):
        response = eve.page.goto(portal.url + path)
        assert response is not None and response.status == 404, path
    eve.goto("/approvals")
    expect(eve.page.get_by_text("Nothing is waiting for you.")).to_be_visible()
    clean(eve, "error and empty pages")
    eve.close()
