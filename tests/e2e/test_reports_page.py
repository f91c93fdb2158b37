"""The reports page in a real browser: charts drawn from the figures, nothing fetched from elsewhere, fits a phone."""
from __future__ import annotations

from urllib.parse import quote, urlsplit

import pytest

from .browser import Page, expect

pytestmark = pytest.mark.e2e


@pytest.fixture
def figures(live_server):
    """Two requests of this month, one of them done; return the server's own figures as JSON."""
    for number in ("ОТЧ-1", "ОТЧ-2"):
        status, _ = live_server.api("POST", "/api/requests", {"number": number, "position": "Отчёт"})
        assert status in (201, 409)
    status, _ = live_server.api("POST", "/api/requests/" + quote("ОТЧ-1", safe="") + "/status",
                                {"status": "выполнена", "comment": "Готово"})
    assert status == 200
    status, data = live_server.api("GET", "/api/reports")
    assert status == 200
    return data


def month_row(page: Page, chart: str, index: int):
    return page.locator(f"#{chart}-figure svg text.chart-value").nth(index)


def test_charts_show_the_figures_and_nothing_leaves_the_machine(page: Page, live_server, figures):
    hosts: set[str] = set()
    page.on("request", lambda request: hosts.add(urlsplit(request.url).hostname or request.url))
    page.goto("/")
    page.get_by_role("navigation", name="Разделы").get_by_role("link", name="Отчёты").click()
    expect(page.get_by_role("heading", name="Отчёты", level=1)).to_be_visible()
    charts = page.locator("svg.chart")
    expect(charts).to_have_count(4)
    for i in range(4):
        expect(charts.nth(i)).to_be_visible()
    this_month = figures["months"][-1]
    last = len(figures["months"]) - 1
    # The requests chart writes each month's count after its bar; the on-time chart the share.
    expect(month_row(page, "chart-requests", last)).to_have_text(str(this_month["created"]))
    # This month has a done request, so its bar is the last with a "done" part; its tooltip has the count.
    done = page.locator("#chart-requests-figure svg rect.seg-done title").last
    expect(done).to_contain_text(f"выполнено {this_month['done']}")
    share = this_month["resolve"]["share"]
    expect(month_row(page, "chart-ontime", last)).to_have_text("—" if share is None else f"{round(share * 100)} %")
    assert figures["total"]["done"] >= 1
    expect(page.locator("table.report tr.total td").first).to_have_text(str(figures["total"]["created"]))
    assert hosts == {"127.0.0.1"}, f"the page reached beyond the machine: {hosts}"


def test_reports_page_fits_a_phone(browser, live_server, figures):
    context = browser.new_context(base_url=live_server.base_url, viewport={"width": 390, "height": 844},
                                  locale="ru-RU", is_mobile=True)
    try:
        phone = context.new_page()
        phone.goto("/reports")
        expect(phone.locator("svg.chart").first).to_be_visible()
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the reports page is wider than the phone screen: {width}px"
        for box in (phone.locator("svg.chart").nth(i).bounding_box() for i in range(4)):
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    finally:
        context.close()
