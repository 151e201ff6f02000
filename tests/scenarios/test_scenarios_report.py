"""Issue 17, finding 9: the HTML report is self-contained, verdict first, and every chart draws."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.browser import dump_dom, screenshot

pytestmark = pytest.mark.e2e
CHARTS = ("rates", "request_latency", "delivery_latency", "pending", "lost_late")


def test_report_opens_offline_with_every_chart_drawn(locust_run, tmp_path: Path):
    run = locust_run(
        "-t", "8s", "--target-rate", "200", "--bad-input-share", "0.05", "--delivery-wait", "10",
        "--metrics-port", "0", "--run-id", "report-check",
    )  # fmt: skip
    assert run.code == 0, run.output[-3000:]
    page = run.html()
    # Self-contained: nothing fetched when it is viewed.
    assert not re.search(r"<(script|img|iframe)[^>]*\ssrc=|<link[^>]*href=|url\(\s*['\"]?https?:", page)
    assert "uPlot" in page
    # Verdict first, coloured, before the load and delivery tables.
    assert (
        page.index('class="verdict PASS"')
        < page.index("<h2>Load</h2>")
        < page.index("Delivery per destination")
    )
    assert ".PASS .badge" in page and "#137333" in page
    # At least what Locust's own report has: per endpoint and library, percentiles, failures.
    assert "Requests per endpoint and library" in page and "analytics-ios" in page and "p99 ms" in page
    assert "Failures (Locust)" in page

    report = next(run.folder.glob("reports/report-check/report.html"))
    dom = dump_dom(report.as_uri())
    drawn = dict(re.findall(r'data-chart="(\w+)"[^>]*data-ink="(-?\d+)"', dom))
    series = dict(re.findall(r'data-chart="(\w+)"[^>]*data-series="(\d+)"', dom))
    assert set(drawn) == set(CHARTS), dom[:2000]
    for chart in CHARTS:
        assert int(series[chart]) >= 2, f"{chart}: fewer series than expected"
        assert int(drawn[chart]) > 100, f"{chart}: no pixels in its series' colours"
    assert dom.count('class="u-title"') == len(CHARTS)  # uPlot drew each chart (axis labels go on its canvas)
    screenshot(report.as_uri(), tmp_path / "report.png")
