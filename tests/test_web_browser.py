"""The history browser in a real headless browser: Debian's chromium loads each page
from a running ``pghistory serve``; the test checks the rendered DOM and saves a
screenshot of each page under the test's tmp directory (PGH_SCREENSHOTS=DIR copies
them there too: that is how docs/*.png are made).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import harness
from cli_history import BOB, make_history

PAGES = {
    "timeline": ("/", ['<td class="time">2026-11-01 10:05:00+00:00</td>',
                       "name: <del>\"Alice &lt;script&gt;alert(1)&lt;/script&gt;\"</del>"]),
    "object": ("/object?table=public.orders&id=1", ['<tr><th>status</th><td class="old">"new"</td><td class="new">"paid"</td></tr>']),
    "context": (f"/context/{BOB}", ["<dt>reason</dt><dd>payment &lt;b&gt;received&lt;/b&gt;</dd>"]),
    "tables": ("/tables", ['<td class="count">5</td>']),
    "event": ("/event?slug=public.orders_event:3", ['<h1>public.orders_event:3</h1>']),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(conn, dsn, tmp_path):
    reason = harness.debian_packages("chromium")
    if reason:
        pytest.skip(reason)
    make_history(conn)
    script = shutil.which("pghistory", path=os.path.dirname(sys.executable))
    if script is None:
        pytest.skip("the pghistory console script is not installed (tests/run does `pip install -e .`)")
    port = free_port()
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115
    process = subprocess.Popen([script, "serve", "--dsn", dsn, "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, "PGTZ": "UTC"})
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url + "/tables", timeout=2).read()
                break
            except OSError:
                if process.poll() is not None:
                    pytest.fail((tmp_path / "serve.log").read_text())
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'chromium-profile'}", "--hide-scrollbars", *args],
        capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name", list(PAGES))
def test_each_page_renders_in_chromium(server, tmp_path, name):
    path, fragments = PAGES[name]
    dom = chromium(tmp_path, "--dump-dom", server + path)
    assert dom.returncode == 0, dom.stderr
    for fragment in fragments:
        assert fragment in dom.stdout, (fragment, dom.stdout)
    assert "<script>" not in dom.stdout
    shot = tmp_path / f"{name}.png"
    result = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1000,560", server + path)
    assert result.returncode == 0, result.stderr
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("PGH_SCREENSHOTS"):
        shutil.copy(shot, Path(os.environ["PGH_SCREENSHOTS"]) / f"browser-{name}.png")
