"""Headless Chromium driven over the Chrome DevTools Protocol, for tests of web pages.

Chromium runs with ``--remote-debugging-pipe``: it reads the protocol's JSON commands on
its file descriptor 3 and writes answers and events on its descriptor 4, each message
ended by a NUL byte, so neither a port nor a websocket is needed. One reader thread
takes every message off the pipe; a caller waits on a condition, with a deadline, for the
answer to its command or for the event it expects (a page's ``load``), never for a fixed
time. Clicks are real mouse presses at the element's place on the page, so a covered or
hidden button cannot be clicked. Pages behind HTTP basic auth are answered the way a
person would: the browser is challenged (``Fetch.authRequired``) and given the
credentials.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import itertools
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

#: Where the reader hands over messages: descriptors of ours kept clear of 3 and 4.
_FIRST_SPARE_FD = 10


class BrowserError(AssertionError):
    """Chromium answered a command with an error, did not answer in time, or exited."""


class Browser:
    """One headless Chromium with one page (tab), for a ``with`` block.

    Args:
      profile: an empty folder for Chromium's profile; its log goes to ``chromium.log``
        beside it.
      credentials: user and password for pages behind HTTP basic auth (none: a
        challenge is refused, as when a person cancels the dialog).
      timeout: how long, in seconds, any one command or page load may take.
      window: the page's size in pixels (width, height).
    """

    def __init__(
        self,
        profile: Path,
        *,
        credentials: tuple[str, str] | None = None,
        timeout: float = 60.0,
        window: tuple[int, int] = (1280, 800),
    ) -> None:
        self.profile = profile
        self.credentials = credentials
        self.timeout = timeout
        self.window = window
        #: How many times a server asked this browser for credentials.
        self.challenges = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._to_browser = -1
        self._from_browser = -1
        self._write_lock = threading.Lock()
        self._changed = threading.Condition()
        self._ids = itertools.count(1)
        self._answers: dict[int, dict[str, Any]] = {}
        self._waiting: set[int] = set()
        self._events: list[dict[str, Any]] = []
        self._exited = False
        self._reader: threading.Thread | None = None
        self._session = ""
        self._answered_auth: set[str] = set()
        self._log = profile.parent / "chromium.log"

    # -- life cycle ------------------------------------------------------------------------

    def __enter__(self) -> Browser:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        """Start Chromium and open its page."""
        self.profile.mkdir(parents=True, exist_ok=True)
        commands_read, commands_write = _spare_pipe()
        events_read, events_write = _spare_pipe()
        # Chromium reads the protocol on fd 3 and writes it on fd 4: bash (dash takes no
        # descriptor above 9) puts the pipes' ends there and closes their spare numbers
        # before it becomes Chromium.
        redirect = (
            f'exec "$@" 3<&{commands_read} 4>&{events_write} {commands_read}<&- {events_write}>&-'
        )
        width, height = self.window
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    "bash",
                    "-c",
                    redirect,
                    "bash",
                    "chromium",
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-extensions",
                    "--password-store=basic",
                    f"--user-data-dir={self.profile}",
                    f"--window-size={width},{height}",
                    "--remote-debugging-pipe",
                    "about:blank",
                ],
                pass_fds=(commands_read, events_write),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # its renderers and helpers stop with it
            )
        os.close(commands_read)
        os.close(events_write)
        self._to_browser, self._from_browser = commands_write, events_read
        self._reader = threading.Thread(target=self._read, name="chromium-cdp", daemon=True)
        self._reader.start()
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)
        attached = self.call(
            "Target.attachToTarget",
            {"targetId": target["targetId"], "flatten": True},
            session=False,
        )
        self._session = attached["sessionId"]
        for domain in ("Page", "Runtime"):
            self.call(f"{domain}.enable")
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        if self.credentials is not None:
            self.call(
                "Fetch.enable", {"handleAuthRequests": True, "patterns": [{"urlPattern": "*"}]}
            )

    def close(self) -> None:
        """Close Chromium (killed with its helpers if it does not exit in time)."""
        process = self._process
        if process is None:
            return
        self._process = None
        if process.poll() is None:
            with contextlib.suppress(BrowserError, OSError):
                self.call("Browser.close", session=False, timeout=10)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=20)
        with contextlib.suppress(OSError):
            os.close(self._to_browser)
        if self._reader is not None:
            self._reader.join(timeout=20)
        with contextlib.suppress(OSError):
            os.close(self._from_browser)

    # -- the protocol ----------------------------------------------------------------------

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        session: bool = True,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Send a protocol command (to the page's session unless ``session`` is false)
        and return its result.

        Raises:
          BrowserError: on an error answer, no answer within ``timeout`` seconds (default:
            the browser's), or a browser that exited.
        """
        command_id = next(self._ids)
        with self._changed:
            self._waiting.add(command_id)
        try:
            self._send(command_id, method, params, session=session)
            answer = self._wait(
                lambda: self._answers.pop(command_id, None), f"an answer to {method}", timeout
            )
        finally:
            with self._changed:
                self._waiting.discard(command_id)
        if "error" in answer:
            raise BrowserError(f"{method} failed: {answer['error']}")
        result: dict[str, Any] = answer.get("result", {})
        return result

    def _send(
        self, command_id: int, method: str, params: dict[str, Any] | None, *, session: bool
    ) -> None:
        message: dict[str, Any] = {"id": command_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self._session
        data = json.dumps(message).encode() + b"\0"
        with self._write_lock:
            view = memoryview(data)
            while view:
                view = view[os.write(self._to_browser, view) :]

    def _wait(self, found: Any, what: str, timeout: float | None = None) -> Any:
        """Wait until ``found()`` (called holding the lock) returns something truthy."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        with self._changed:
            while True:
                value = found()
                if value:
                    return value
                if self._exited:
                    raise BrowserError(
                        f"Chromium exited while waiting for {what} (its log: {self._log})"
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BrowserError(f"no {what} within {timeout or self.timeout}s")
                self._changed.wait(left)

    def _read(self) -> None:
        """Take every message Chromium writes off the pipe until it closes."""
        pending = b""
        try:
            while chunk := os.read(self._from_browser, 1 << 16):
                pending += chunk
                *messages, pending = pending.split(b"\0")
                for raw in messages:
                    self._receive(json.loads(raw))
        except OSError:
            pass
        finally:
            with self._changed:
                self._exited = True
                self._changed.notify_all()

    def _receive(self, message: dict[str, Any]) -> None:
        if "id" in message:
            with self._changed:
                if message["id"] in self._waiting:
                    self._answers[message["id"]] = message
                    self._changed.notify_all()
            return
        method = message.get("method", "")
        if method.startswith("Fetch."):
            self._answer_fetch(method, message.get("params", {}))
            return
        with self._changed:
            self._events.append(message)
            self._changed.notify_all()

    def _answer_fetch(self, method: str, params: dict[str, Any]) -> None:
        """Let every request through, and answer a basic-auth challenge once per request
        with the credentials (a second one for the same request is cancelled)."""
        request = params["requestId"]
        if method == "Fetch.requestPaused":
            self._send(
                next(self._ids), "Fetch.continueRequest", {"requestId": request}, session=True
            )
        elif method == "Fetch.authRequired" and self.credentials is not None:
            self.challenges += 1
            user, password = self.credentials
            answer: dict[str, Any] = {"response": "CancelAuth"}
            if request not in self._answered_auth:
                self._answered_auth.add(request)
                answer = {"response": "ProvideCredentials", "username": user, "password": password}
            self._send(
                next(self._ids),
                "Fetch.continueWithAuth",
                {"requestId": request, "authChallengeResponse": answer},
                session=True,
            )

    # -- pages -----------------------------------------------------------------------------

    def open(self, url: str) -> None:
        """Go to ``url`` as if typed in the address bar, and wait until the page loaded."""
        mark = self._event_count()
        navigated = self.call("Page.navigate", {"url": url})
        if navigated.get("errorText"):
            raise BrowserError(f"opening {url} failed: {navigated['errorText']}")
        self._wait_for_load(mark, url)

    def click(self, selector: str) -> None:
        """Click the element ``selector`` finds with the mouse (the left button at its
        middle, scrolled into view) and wait until the page it leads to loaded.

        Raises:
          BrowserError: when no element matches, or another element covers its middle.
        """
        spot = self.evaluate(
            f"""(() => {{
                const element = document.querySelector({json.dumps(selector)});
                if (!element) return "missing";
                element.scrollIntoView({{block: "center", inline: "center"}});
                const box = element.getBoundingClientRect();
                const x = box.left + box.width / 2, y = box.top + box.height / 2;
                const hit = document.elementFromPoint(x, y);
                if (!hit || !(hit === element || element.contains(hit))) return "covered";
                return [x, y];
            }})()"""
        )
        if not isinstance(spot, list):
            raise BrowserError(f"cannot click {selector}: {spot} on {self.url()}")
        x, y = spot
        mark = self._event_count()
        self.call("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})
        for kind in ("mousePressed", "mouseReleased"):
            self.call(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1},
            )
        self._wait_for_load(mark, f"the page {selector} leads to")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript ``expression`` on the page (JSON-able values)."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def url(self) -> str:
        """The address of the page shown."""
        return str(self.evaluate("location.href"))

    def text(self, selector: str = "body") -> str:
        """The text of the element ``selector`` finds as the page writes it (before CSS
        changes its case), whitespace collapsed."""
        shown = self.evaluate(f"document.querySelector({json.dumps(selector)}).textContent")
        return " ".join(str(shown).split())

    def cookies(self) -> list[dict[str, Any]]:
        """The cookies the browser would send to the page shown."""
        cookies: list[dict[str, Any]] = self.call("Network.getCookies")["cookies"]
        return cookies

    def watch_requests(self) -> None:
        """Record the requests the page sends from now on (see :meth:`sent_header`)."""
        self.call("Network.enable")

    def sent_header(self, method: str, url: str, name: str) -> str | None:
        """The ``name`` header, as it went out (cookies included), of the last ``method``
        request to ``url`` since :meth:`watch_requests` (none: not sent); waits until
        Chromium reported that request's headers."""

        def reported() -> tuple[str | None] | None:
            sent = [
                event["params"]["requestId"]
                for event in self._events
                if event["method"] == "Network.requestWillBeSent"
                and event["params"]["request"]["method"] == method
                and event["params"]["request"]["url"] == url
            ]
            for event in reversed(self._events):
                params = event.get("params", {})
                if (
                    sent
                    and event["method"] == "Network.requestWillBeSentExtraInfo"
                    and params["requestId"] == sent[-1]
                ):
                    headers = {key.lower(): value for key, value in params["headers"].items()}
                    return (headers.get(name.lower()),)
            return None

        header: str | None = self._wait(reported, f"the headers of {method} {url}")[0]
        return header

    def screenshot(self, path: Path) -> None:
        """Save what the page shows as a PNG at ``path``."""
        shot = self.call("Page.captureScreenshot", {"format": "png"})
        path.write_bytes(base64.b64decode(shot["data"]))

    def _event_count(self) -> int:
        with self._changed:
            return len(self._events)

    def _wait_for_load(self, mark: int, what: str) -> None:
        """Wait for the page's ``load`` event after the ``mark``-th event."""

        def loaded() -> bool:
            return any(
                event["method"] == "Page.loadEventFired" and event.get("sessionId") == self._session
                for event in self._events[mark:]
            )

        self._wait(loaded, f"load of {what}")


def _spare_pipe() -> tuple[int, int]:
    """A pipe whose two ends are numbered from :data:`_FIRST_SPARE_FD` up (so never 3 or
    4, where Chromium expects the protocol) and not inherited by other children."""
    read_end, write_end = os.pipe()
    spare = tuple(
        fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, _FIRST_SPARE_FD) for fd in (read_end, write_end)
    )
    os.close(read_end)
    os.close(write_end)
    return spare[0], spare[1]
