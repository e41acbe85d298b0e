"""The web console in a real headless Chromium, against a real manager."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from support import REPO, stop_process, wait_for, write_unit

CHROMIUM = shutil.which("chromium")
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class WebConsole:
    def __init__(self, manager):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "unitmgr.manager.cli", "web", "--listen", "127.0.0.1:0", "--interval", "0.3"],
            env=manager.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        line = self.proc.stdout.readline()
        assert line.startswith("unitmgr web: http://127.0.0.1:"), line
        self.url = line.split(" ", 2)[2].strip()
        self.base = self.url.split("/?")[0]
        self.token = self.url.split("token=")[1]

    def stop(self) -> None:
        stop_process(self.proc)


@pytest.fixture
def console(make_manager, example_units):
    manager = make_manager(example_units)
    web = WebConsole(manager)
    yield manager, web
    web.stop()


def post(url: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=b"{}", method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_post_without_token_refused(console) -> None:
    manager, web = console
    pid = wait_for(lambda: manager.status("web")["main_pid"], message="web running")
    target = f"{web.base}/api/unit/web.service/restart"
    assert post(target, {}) == 401
    assert post(target, {"Authorization": f"Bearer {web.token}"}) == 403
    assert post(target, {"Authorization": f"Bearer {web.token}", "X-CSRF-Token": "forged"}) == 403
    assert manager.status("web")["main_pid"] == pid
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(f"{web.base}/api/units", timeout=5)
    assert error.value.code == 401


def test_get_changes_nothing(console) -> None:
    manager, web = console
    pid = wait_for(lambda: manager.status("web")["main_pid"], message="web running")
    request = urllib.request.Request(f"{web.base}/api/unit/web.service/restart",
                                     headers={"Authorization": f"Bearer {web.token}"})
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=5)
    assert error.value.code == 404
    assert manager.status("web")["main_pid"] == pid


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_console_in_chromium(console) -> None:
    playwright_api = pytest.importorskip("playwright.sync_api")
    manager, web = console
    first_pid = wait_for(lambda: manager.status("web")["main_pid"], message="web running")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            page.goto(web.url)
            page.wait_for_selector('tr[data-unit="web.service"]')
            for unit in ("web.service", "worker@1.service", "worker@2.service", "ticker.service"):
                assert page.locator(f'tr[data-unit="{unit}"]').count() == 1

            page.click('a[href="/unit/web.service"]')
            page.wait_for_selector("#points")
            wait_for(lambda: int(page.inner_text("#points")) >= 2, timeout=15, message="graph points")
            before = int(page.inner_text("#points"))
            wait_for(lambda: int(page.inner_text("#points")) > before, timeout=15, message="more graph points")

            page.click('button[data-action="restart"]')
            second_pid = wait_for(lambda: (p := manager.status("web")["main_pid"]) != first_pid and p,
                                  timeout=15, message="a new web main PID")
            assert second_pid != first_pid
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "unit-page.png"), full_page=True)

            page.goto(web.base + "/")
            page.wait_for_selector('button.scale-up[data-template="worker"]')
            page.click('button.scale-up[data-template="worker"]')
            wait_for(lambda: manager.status("worker@3")["active_state"] == "active", timeout=15,
                     message="a third worker")
        finally:
            browser.close()


def test_units_api_lists_examples(console) -> None:
    manager, web = console
    request = urllib.request.Request(f"{web.base}/api/units", headers={"Authorization": f"Bearer {web.token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        units = {u["name"]: u for u in json.loads(response.read())["units"]}
    assert "web.service" in units
    assert units["web.service"]["load_state"] == "loaded"


def test_odd_headers_get_clean_errors(console) -> None:
    manager, web = console
    bearer = "Bearer \u00e9".encode().decode("latin-1")
    request = urllib.request.Request(f"{web.base}/api/units", headers={"Authorization": bearer})
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=5)
    assert error.value.code == 401
    headers = {"Authorization": f"Bearer {web.token}", "X-CSRF-Token": "\u00e9".encode().decode("latin-1")}
    assert post(f"{web.base}/api/unit/web.service/restart", headers) == 403


def test_slow_page_gets_dropped_count(make_manager, tmp_path) -> None:
    # A browser stops reading its event stream during a burst. The manager drops
    # events for it because the page's queue is bounded, and the stream reports the count.
    trigger = tmp_path / "go"
    units = tmp_path / "units"
    write_unit(units, "burst.service", f"""\
[Service]
ExecStart=/bin/sh -c 'while [ ! -e {trigger} ]; do sleep 0.05; done; \\
head -c 40000000 /dev/zero | tr "\\\\0" x | fold -w 100'
""", enable=True)
    manager = make_manager(units)
    web = WebConsole(manager)
    try:
        host, port = web.base.removeprefix("http://").split(":")
        page = socket.socket()
        page.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        page.settimeout(10)
        page.connect((host, int(port)))
        try:
            page.sendall(f"GET /api/events?unit=burst.service HTTP/1.1\r\nHost: {host}\r\n"
                         f"Authorization: Bearer {web.token}\r\n\r\n".encode())
            received = b""
            while b"event: stats" not in received:
                received += page.recv(4096)
            trigger.touch()
            wait_for(lambda: manager.status("burst")["active_state"] == "inactive", timeout=60,
                     message="the burst to end")
            while b"event: dropped" not in received:
                chunk = page.recv(65536)
                assert chunk, "the stream ended without a dropped event"
                received = received[-64:] + chunk
            tail = received[received.index(b"event: dropped"):]
            while b"\n\n" not in tail:
                tail += page.recv(4096)
            data = json.loads(tail.split(b"\n")[1].removeprefix(b"data: "))
            assert data["count"] > 0
        finally:
            page.close()
    finally:
        web.stop()
