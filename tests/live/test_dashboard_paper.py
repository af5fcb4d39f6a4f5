"""The dashboard fed by a paper run against the fake gateway, watched in headless Chromium."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request

import pytest

from tests.live.conftest import paper_args, start_py

pytestmark = pytest.mark.slow
TOKEN = "paper-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serving(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=0.5):
            return True
    except (urllib.error.URLError, OSError):
        return False


def test_the_page_shows_each_fill_within_two_seconds_of_the_gateway_executing_it(browser, gateway, tmp_path,
                                                                                errors_of):
    port = free_port()
    url = f"http://127.0.0.1:{port}/?token={TOKEN}"
    # five bins of 2 s: the page is up before most child orders are sent
    proc = start_py(*paper_args(gateway, tmp_path, "mode.bins=5", "mode.bin_seconds=2.0",
                                f"dashboard.port={port}", f"dashboard.token={TOKEN}"))
    try:
        deadline = time.time() + 30
        while not serving(url) and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert serving(url), "the paper run never served its dashboard"
        errors_of(browser)
        browser.get(url)
        connected = time.time()
        seen: dict[str, int] = {}
        lags = []
        ended = None
        while True:
            if ended is None and proc.poll() is not None:
                ended = time.time()
            refs = {ex.order.ref for ex in gateway.executions}
            for ref in refs:
                rows = len(browser.find_elements("css selector", f'#fills tr[data-order-id="{ref}"]'))
                fills = sorted(e.time for e in gateway.executions if e.order.ref == ref)
                for n in range(seen.get(ref, 0), min(rows, len(fills))):
                    if fills[n] > connected:  # a fill before the page opened is no latency sample
                        lags.append(time.time() - fills[n])
                seen[ref] = max(seen.get(ref, 0), min(rows, len(fills)))
            if ended is not None or time.time() > deadline + 30:
                break
            time.sleep(0.02)
        out, err = proc.communicate(timeout=30) if ended else ("", "")
        assert lags, f"no fill happened while the page was open\n{out}\n{err}"
        assert max(lags) < 2.0, lags
        assert all(seen.get(ex.order.ref, 0) >= 1 for ex in gateway.executions if ex.time > connected)
        # when the run ends its server closes, and the page's attempts to reconnect are refused:
        # that is the only console error allowed
        assert [e for e in errors_of(browser) if "ERR_CONNECTION_REFUSED" not in e["message"]] == []
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def test_the_paper_dashboard_refuses_a_request_without_the_token(gateway, tmp_path):
    port = free_port()
    proc = start_py(*paper_args(gateway, tmp_path, "mode.bins=3", "mode.bin_seconds=1.0",
                                f"dashboard.port={port}", f"dashboard.token={TOKEN}"))
    try:
        deadline = time.time() + 30
        while not serving(f"http://127.0.0.1:{port}/?token={TOKEN}") and time.time() < deadline:
            time.sleep(0.05)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
        assert refused.value.code == 401
    finally:
        proc.kill()
        proc.communicate(timeout=30)
