"""Headless Chromium for tests: a local HTTP server for a folder and a small DevTools-protocol client.

The browser is driven over the Chrome DevTools Protocol (one websocket, ``websocket-client``): no
browser download, no driver. Host names other than 127.0.0.1 do not resolve in the browser, so a page
that reaches for the network fails fast instead of hanging, and the request is recorded.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import websocket

SKIP_MESSAGE = (
    "chromium not found: install Debian's chromium (apt-get install chromium) "
    "or set RCL_CHROMIUM=/path/to/chrome to run the browser test"
)


def find_chromium() -> str | None:
    """The browser binary: ``$RCL_CHROMIUM`` when set, else ``chromium`` (or ``chromium-browser``) on PATH."""
    given = os.environ.get("RCL_CHROMIUM")
    if given:
        return given if Path(given).is_file() else shutil.which(given)
    return shutil.which("chromium") or shutil.which("chromium-browser")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve ``folder`` on 127.0.0.1 (a free port) in a thread; yields the base URL, ending in ``/``."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class BrowserError(RuntimeError):
    pass


class Chromium:
    """One headless Chromium and one page (a flat DevTools session); use as a context manager.

    Events of the enabled domains are kept in ``events`` until :meth:`take_events`.
    """

    def __init__(self, binary: str, width: int = 1280, height: int = 900, timeout: float = 60):
        self.binary, self.width, self.height, self.timeout = binary, width, height, timeout
        self.events: list[dict] = []
        self._next_id = 0

    def __enter__(self) -> Chromium:
        self._profile = profile = Path(tempfile.mkdtemp(prefix="rcl-chromium-"))
        self._log = open(profile / "chromium.log", "w+")  # closed in __exit__
        args = [
            self.binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
            "--disable-background-networking", "--disable-component-update", "--disable-default-apps",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--hide-scrollbars",
            f"--user-data-dir={profile / 'data'}", "--remote-debugging-port=0",
            f"--window-size={self.width},{self.height}", "about:blank",
        ]  # fmt: skip
        self._proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            self._ws = websocket.create_connection(
                self._browser_url(profile), timeout=self.timeout, suppress_origin=True
            )
            target = self.send("Target.createTarget", url="about:blank")["targetId"]
            self._session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                self.call(f"{domain}.enable")
            self.call(
                "Emulation.setDeviceMetricsOverride",
                width=self.width,
                height=self.height,
                deviceScaleFactor=1,
                mobile=False,
            )
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _browser_url(self, profile: Path) -> str:
        """Chromium writes its DevTools port and path to ``DevToolsActivePort`` in the profile once it listens."""
        port_file = profile / "data" / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._log.seek(0)
                raise BrowserError(f"chromium exited with {self._proc.returncode}:\n{self._log.read()[-3000:]}")
            lines = port_file.read_text().split() if port_file.exists() else []
            if len(lines) == 2:
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
            time.sleep(0.05)
        raise BrowserError(f"chromium did not open its DevTools port within {self.timeout:.0f} s")

    def __exit__(self, *exc) -> None:
        try:
            self.send("Browser.close")  # a clean shutdown: helper processes leave the profile too
        except Exception:
            self._proc.terminate()
        with contextlib.suppress(Exception):
            self._ws.close()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._log.close()
        for _ in range(50):  # a helper process may still be writing there for a moment
            shutil.rmtree(self._profile, ignore_errors=True)
            if not self._profile.exists():
                break
            time.sleep(0.1)

    def send(self, method: str, session: str | None = None, **params) -> dict:
        """Send one command and return its result; events that arrive meanwhile go to ``events``."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self._ws.send(json.dumps(message))
        while True:
            reply = self._receive(time.monotonic() + self.timeout, method)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})

    def call(self, method: str, **params) -> dict:
        """A command to the page."""
        return self.send(method, self._session, **params)

    def _receive(self, deadline: float, waiting_for: str) -> dict:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BrowserError(f"no answer to {waiting_for} within {self.timeout:.0f} s")
        self._ws.settimeout(remaining)
        try:
            reply = json.loads(self._ws.recv())
        except websocket.WebSocketTimeoutException:
            raise BrowserError(f"no answer to {waiting_for} within {self.timeout:.0f} s") from None
        if "method" in reply:
            self.events.append(reply)
        return reply

    def wait_for(self, event: str) -> dict:
        """Wait for the page's next ``event`` (already received ones count) and return it."""
        deadline = time.monotonic() + self.timeout
        seen = 0
        while True:
            for i in range(seen, len(self.events)):
                if self.events[i]["method"] == event:
                    return self.events[i]
            seen = len(self.events)
            self._receive(deadline, event)

    def take_events(self) -> list[dict]:
        events, self.events = self.events, []
        return events

    def open(self, url: str) -> None:
        """Navigate to ``url`` and wait for its load event."""
        self.take_events()
        result = self.call("Page.navigate", url=url)
        if result.get("errorText"):
            raise BrowserError(f"{url}: {result['errorText']}")
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str):
        """The JSON value of a JavaScript expression in the page (promises are awaited)."""
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(details.get("exception", {}).get("description") or details.get("text"))
        return result["result"].get("value")

    def screenshot(self, path: Path) -> None:
        """A PNG of the whole page, beyond the viewport."""
        size = self.call("Page.getLayoutMetrics")["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": max(size["width"], 1), "height": max(size["height"], 1), "scale": 1}
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True, clip=clip)["data"]
        path.write_bytes(base64.b64decode(data))
