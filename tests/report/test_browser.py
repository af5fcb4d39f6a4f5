"""In headless Chromium: the report and the sweep page render with no console error and their
charts hold data, and the report's charts answer a hover, a drag (zoom), a range button and a
legend click (issue 18.5); the dashboard shows a fill within 2 s of it happening, takes the kill switch
from the page, replays a backtest, and refuses a connection without the token."""

import asyncio
import threading
import time

import pandas as pd
import pytest

pytestmark = pytest.mark.slow

CHARTS_JS = """
return Array.from(document.querySelectorAll('svg.chart')).map(function (svg) {
  var box = svg.getBoundingClientRect();
  var drawn = Array.from(svg.querySelectorAll('path')).filter(function (p) {
    return (p.getAttribute('d') || '').length > 20 && p.getTotalLength() > 0; }).length;
  var cells = svg.querySelectorAll('rect.cell').length;
  return {id: svg.id, points: +svg.getAttribute('data-points'), drawn: drawn, cells: cells,
          width: box.width, height: box.height};
});
"""


def test_report_renders_without_console_errors_and_its_charts_hold_data(browser, default_run, errors_of):
    errors_of(browser)
    browser.get((default_run / "report.html").as_uri())
    assert browser.title == "robo-trader run report"
    charts = {c["id"]: c for c in browser.execute_script(CHARTS_JS)}
    for chart in ("chart-equity", "chart-drawdown", "chart-rolling-vol", "chart-rolling-sharpe", "chart-weights",
                  "chart-sleeves", "chart-assets", "chart-turnover", "chart-costs", "chart-execution"):
        c = charts[chart]
        assert c["points"] > 0 and c["width"] > 300 and c["height"] > 100, c
        assert c["drawn"] > 0 or chart == "chart-assets", c  # bars are rects
    assert browser.execute_script("return document.querySelectorAll('#chart-assets rect').length") == 20
    # offline: the page asked for nothing beyond itself
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    assert browser.execute_script("return document.querySelectorAll('table.monthly tbody tr').length") == 33
    assert "lookback: 252" in browser.find_element("id", "config").text
    assert errors_of(browser) == []


def test_sweep_summary_page_renders(browser, tmp_path, run_cli, errors_of):
    run_cli("-m", "strategy.momentum.lookback=60,120", "allocation=equal_weight,inverse_vol",
            "data.start=2012-01-01", f"hydra.sweep.dir={tmp_path}")
    errors_of(browser)
    browser.get((tmp_path / "summary.html").as_uri())
    charts = {c["id"]: c for c in browser.execute_script(CHARTS_JS)}
    assert charts["chart-heatmap"]["cells"] == 4 and charts["chart-heatmap"]["width"] > 100
    links = browser.execute_script("return Array.from(document.querySelectorAll('#jobs a')).map(a => a.href)")
    assert len(links) == 4 and all(link.endswith("/report.html") for link in links)
    assert "Deflated Sharpe Ratio" in browser.find_element("id", "overfitting").text
    assert errors_of(browser) == []


@pytest.fixture
def live_dashboard():
    from pipeline.dashboard.server import Dashboard

    kills = []
    dash = Dashboard(port=0, token="tok-123", on_kill=kills.append).serve_in_thread()
    dash.kills = kills
    yield dash
    dash.close()


def wait_until(predicate, timeout: float, poll: float = 0.02):
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    return predicate()


def test_dashboard_shows_a_fill_within_two_seconds(browser, live_dashboard, errors_of):
    """A test driver stands in for the paper loop: it publishes a fill and times how long the
    page takes to show it (the integrator adds the same check fed by the fake gateway)."""
    dash = live_dashboard
    errors_of(browser)
    browser.get(dash.url)
    assert wait_until(lambda: browser.find_element("id", "conn").text == "live", 10)
    dash.publish("equity", {"time": "2026-11-25T15:00:00", "equity": 1_000_000.0, "cash": 50_000.0,
                            "gross_exposure": 0.95})
    dash.publish("positions", {"positions": [{"symbol": "AAPL", "quantity": 100, "price": 190.0, "value": 19_000.0}]})
    dash.publish("order", {"order_id": 41, "symbol": "MSFT", "side": "buy", "quantity": 10, "status": "Submitted"})
    dash.publish("risk", {"drawdown": -0.012, "max_weight": 0.25})
    times = []
    for order_id in (41, 42, 43):
        started = time.perf_counter()
        dash.publish("fill", {"order_id": order_id, "time": "2026-11-25T15:00:01", "symbol": "MSFT", "side": "buy",
                              "quantity": 10, "price": 410.5, "commission": 1.0})
        shown = wait_until(lambda: browser.find_elements("css selector", f'#fills tr[data-order-id="{order_id}"]'), 2.0)
        times.append(time.perf_counter() - started)
        assert shown, f"fill {order_id} not on the page within 2 s"
    assert max(times) < 2.0, times
    row = browser.find_element("css selector", '#fills tr[data-order-id="43"]').text
    assert "MSFT" in row and "410.5000" in row
    assert "AAPL" in browser.find_element("id", "positions").text
    assert "MSFT" in browser.find_element("id", "orders").text
    assert "1,000,000" in browser.find_element("id", "equity").text
    assert "drawdown" in browser.find_element("id", "risk").text
    # the order filled: it leaves the open orders
    dash.publish("order", {"order_id": 41, "status": "Filled"})
    assert wait_until(lambda: "no open orders" in browser.find_element("id", "orders").text, 2.0)
    assert errors_of(browser) == []


def test_kill_switch_pressed_on_the_page_reaches_the_live_loop(browser, live_dashboard, errors_of):
    dash = live_dashboard
    errors_of(browser)
    browser.get(dash.url)
    assert wait_until(lambda: browser.find_element("id", "conn").text == "live", 10)
    state = browser.find_element("id", "kill-state")
    assert state.get_attribute("data-engaged") == "false"
    button = browser.find_element("id", "kill")
    button.click()  # arms
    assert "Press again" in button.text and dash.kills == []
    button.click()  # fires
    assert wait_until(lambda: dash.kills == ["pressed on the dashboard"], 3)
    assert wait_until(lambda: state.get_attribute("data-engaged") == "true", 3)
    assert not button.is_enabled() and "ENGAGED" in state.text
    assert errors_of(browser) == []


def test_dashboard_refuses_a_connection_without_the_token(browser, live_dashboard, errors_of):
    dash = live_dashboard
    base = f"http://127.0.0.1:{dash.port}/"
    browser.get(base)  # the page itself: 401 and no dashboard
    assert "token is required" in browser.find_element("tag name", "body").text
    assert not browser.find_elements("id", "fills")
    browser.get(base + "?token=wrong")
    assert "token is required" in browser.find_element("tag name", "body").text
    # a WebSocket from a page of the same origin, without the token: refused, never opened
    browser.get(dash.url)
    assert wait_until(lambda: browser.find_element("id", "conn").text == "live", 10)
    result = browser.execute_async_script("""
        var done = arguments[arguments.length - 1], opened = false;
        var ws = new WebSocket('ws://' + location.host + '/ws');
        ws.onopen = function () { opened = true; };
        ws.onclose = function (e) { done({opened: opened, code: e.code}); };
    """)
    assert result == {"opened": False, "code": 1006}
    errors = errors_of(browser)  # the browser reports the refused handshake, with its status
    assert any("401" in e["message"] for e in errors), errors


def test_a_backtest_replays_through_the_same_page(browser, default_run, errors_of):
    from pipeline.dashboard.server import Dashboard, replay

    loop = asyncio.new_event_loop()
    dash = Dashboard(port=0, token="replay-tok", mode="replay")
    loop.run_until_complete(dash.start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        errors_of(browser)
        browser.get(dash.url)
        assert wait_until(lambda: browser.find_element("id", "conn").text == "live", 10)
        future = asyncio.run_coroutine_threadsafe(replay(default_run, dash, bars_per_second=0), loop)
        future.result(timeout=120)
        assert wait_until(lambda: "finished" in browser.find_element("id", "message").text, 10)
        points = browser.execute_script("var p = document.getElementById('equity-line');"
                                        "return p ? +p.getAttribute('data-points') : 0")
        assert points > 1000
        assert len(browser.find_elements("css selector", "#fills tbody tr[data-order-id]")) == 200
        assert browser.find_element("id", "mode").text == "replay"
        assert not browser.find_element("id", "kill").is_enabled()
        assert errors_of(browser) == []
    finally:
        asyncio.run_coroutine_threadsafe(dash.stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


# ---------------------------------------------------------------------------------------------
# issue 18.5: the report's interactive charts, driven as a user drives them

STATE_JS = """
return ['chart-equity', 'chart-drawdown', 'chart-rolling-vol'].map(function (id) {
  var svg = document.getElementById(id), out = svg.closest('figure').querySelector('.readout');
  return {id: id, view: svg.getAttribute('data-view'), points: +svg.getAttribute('data-points'),
          index: out.getAttribute('data-index'), date: (out.querySelector('.t') || {}).textContent,
          values: Array.from(out.querySelectorAll('.s')).map(function (s) {
            return [+s.getAttribute('data-i'), s.querySelector('b').textContent]; }),
          lines: svg.querySelectorAll('path.line').length,
          cross: (svg.querySelector('.cross') || {getAttribute: function () { return null; }}).getAttribute('x1'),
          xlabels: Array.from(svg.querySelectorAll('text.xl')).map(function (t) { return t.textContent; })};
});
"""


def _state(browser):
    return {s["id"]: s for s in browser.execute_script(STATE_JS)}


def _shown(text: str) -> float:
    """A read-out as a number: 12.34% -> 0.1234, 1.23M -> 1.23e6, -0.57 -> -0.57."""
    scale = {"%": 0.01, "k": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}.get(text[-1], 1.0)
    return float(text.rstrip("%kMBT").replace(",", "")) * scale


def _at(svg, browser, frac: float):
    """Selenium offsets are from the element's centre: the point ``frac`` across the plot."""
    box = browser.execute_script("var r = arguments[0].getBoundingClientRect(); return [r.width, r.height];", svg)
    width, height = box
    scale = width / 880  # the SVG's user units
    x = (70 + frac * (880 - 70 - 16)) * scale
    return int(x - width / 2), int(-height / 4)


def test_18_5_hover_reads_out_date_and_values_on_equity_and_drawdown_with_linked_crosshairs(browser, default_run, errors_of):
    from selenium.webdriver.common.action_chains import ActionChains
    from tests.report.test_tearsheet_18 import payloads

    errors_of(browser)
    browser.get((default_run / "report.html").as_uri())
    charts = payloads((default_run / "report.html").read_text())
    svg = browser.find_element("id", "chart-equity")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", svg)
    ActionChains(browser).move_to_element_with_offset(svg, *_at(svg, browser, 0.5)).perform()
    state = _state(browser)
    eq, dd = state["chart-equity"], state["chart-drawdown"]
    i = int(eq["index"])
    p, t, values = charts["chart-equity"]
    assert abs(i - t.size / 2) < t.size * 0.01  # the bar under the pointer, halfway along
    day = pd.Timestamp(int(t[i]), unit="s", tz="UTC").strftime("%Y-%m-%d")
    # linked: the drawdown chart (and every other time chart) shows the same bar
    assert eq["date"] == dd["date"] == state["chart-rolling-vol"]["date"] == day
    assert dd["index"] == eq["index"] and dd["cross"] is not None
    for chart, kind, unit in (("chart-equity", "money", None), ("chart-drawdown", "pct", 0.00005)):
        shown = dict(state[chart]["values"])
        assert sorted(shown) == [0, 1]  # strategy and benchmark
        for s, text in shown.items():
            want = charts[chart][2][s][i]
            tol = unit if unit else 0.0051 * abs(want)  # the last printed digit
            assert abs(_shown(text) - want) <= tol, (chart, s, text, want)
    equity = pd.read_csv(default_run / "equity.csv")["equity"].to_numpy()
    assert abs(_shown(dict(eq["values"])[0]) - equity[i]) <= 0.0051 * equity[i]  # the run's own number
    assert errors_of(browser) == []


def test_18_5_drag_zooms_every_time_chart_to_the_range_and_a_double_click_or_a_button_resets(browser, default_run,
                                                                                              errors_of):
    from selenium.webdriver.common.action_chains import ActionChains
    from tests.report.test_tearsheet_18 import payloads

    errors_of(browser)
    browser.get((default_run / "report.html").as_uri())
    _, t, values = payloads((default_run / "report.html").read_text())["chart-equity"]
    svg = browser.find_element("id", "chart-equity")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", svg)
    before = _state(browser)
    assert before["chart-equity"]["view"] == f"{t[0]},{t[-1]}"
    x0, y = _at(svg, browser, 0.40)
    x1, _ = _at(svg, browser, 0.50)
    ActionChains(browser).move_to_element_with_offset(svg, x0, y).click_and_hold().move_by_offset(x1 - x0, 0) \
        .release().perform()
    after = _state(browser)
    a, b = map(int, after["chart-equity"]["view"].split(","))
    assert after["chart-drawdown"]["view"] == after["chart-rolling-vol"]["view"] == after["chart-equity"]["view"]
    span = t[-1] - t[0]
    assert abs((a - t[0]) / span - 0.40) < 0.01 and abs((b - t[0]) / span - 0.50) < 0.01
    # every bar of the range drawn (no reduction at ~830 bars), and the axis relabelled
    inside = int(((t >= a) & (t <= b)).sum())
    assert after["chart-equity"]["points"] == 2 * inside > 0
    years = [int(x) for x in after["chart-equity"]["xlabels"]]
    assert years and all(a <= pd.Timestamp(f"{y}-01-01", tz="UTC").timestamp() <= b for y in years)
    assert after["chart-equity"]["xlabels"] != before["chart-equity"]["xlabels"]
    # hovering in the zoomed range reads a bar inside it
    ActionChains(browser).move_to_element_with_offset(svg, *_at(svg, browser, 0.25)).perform()
    i = int(_state(browser)["chart-equity"]["index"])
    assert a <= t[i] <= b
    ActionChains(browser).double_click(svg).perform()
    assert _state(browser)["chart-drawdown"]["view"] == f"{t[0]},{t[-1]}"
    # range buttons: the last five years, on every chart
    svg.find_element("xpath", "./ancestor::figure//button[@data-years='5']").click()
    a, b = map(int, _state(browser)["chart-drawdown"]["view"].split(","))
    assert b == t[-1] and abs((b - a) / (365.25 * 86400) - 5) < 0.01
    assert errors_of(browser) == []


def test_18_5_a_legend_click_hides_a_series_and_a_second_shows_it(browser, default_run, errors_of):
    errors_of(browser)
    browser.get((default_run / "report.html").as_uri())
    entry = browser.find_element("css selector", "#drawdowns .legend span[data-i='1']")
    assert _state(browser)["chart-drawdown"]["lines"] == 2
    entry.click()
    assert _state(browser)["chart-drawdown"]["lines"] == 1 and "off" in entry.get_attribute("class")
    assert _state(browser)["chart-equity"]["lines"] == 2  # only its own chart
    entry.click()
    assert _state(browser)["chart-drawdown"]["lines"] == 2
    assert errors_of(browser) == []
