"""A small W3C WebDriver client for the desktop app, on the standard library only.

tauri-driver (127.0.0.1:4444) forwards to WebKitWebDriver, which starts the real app binary.
One persistent keep-alive connection is used for every call: with `Connection: close` clients
tauri-driver drops about one request in three (see shared/design/tauri-on-debian.md, section 4).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import struct
import time
import zlib
from pathlib import Path

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
DRIVER_HOST = "127.0.0.1"
DRIVER_PORT = int(os.environ.get("POSTERN_WEBDRIVER_PORT", "4444"))
SCREENSHOT_DIR = Path(os.environ.get("POSTERN_SCREENSHOT_DIR", "target/screenshots"))


class WebDriverError(RuntimeError):
    pass


class Session:
    """One app window under WebDriver. Closing the session closes the app."""

    def __init__(
        self,
        application: str,
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
    ) -> None:
        self.conn = http.client.HTTPConnection(DRIVER_HOST, DRIVER_PORT, timeout=60)
        options: dict[str, object] = {"application": application}
        if args:
            options["args"] = args
        if env:
            # WebKitWebDriver passes no environment of its own: the app inherits tauri-driver's.
            options["env"] = env
        caps = {"capabilities": {"alwaysMatch": {"tauri:options": options}}}
        value = self._call("POST", "/session", caps)
        self.id = value["sessionId"]

    def _call(self, method: str, path: str, body: object | None = None) -> dict | list | str | None:
        payload = None if body is None else json.dumps(body)
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        self.conn.request(method, path, body=payload, headers=headers)
        response = self.conn.getresponse()
        data = json.loads(response.read() or b"{}")
        if response.status >= 400:
            raise WebDriverError(f"{method} {path}: HTTP {response.status}: {data}")
        return data.get("value")

    def find(self, css: str, timeout: float = 10.0) -> str:
        """The element matching `css`, waiting for it to appear."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self._call(
                    "POST", f"/session/{self.id}/element", {"using": "css selector", "value": css}
                )
                return value[ELEMENT]
            except WebDriverError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def text(self, element: str) -> str:
        return self._call("GET", f"/session/{self.id}/element/{element}/text")

    def wait_for_text(self, css: str, predicate, timeout: float = 10.0) -> str:
        """Poll the text of `css` until `predicate(text)` holds; return the text."""
        deadline = time.monotonic() + timeout
        element = self.find(css, timeout)
        while True:
            current = self.text(element)
            if predicate(current):
                return current
            if time.monotonic() > deadline:
                raise AssertionError(f"{css} still reads {current!r} after {timeout}s")
            time.sleep(0.1)

    def find_all(self, css: str) -> list[str]:
        """Every element matching `css` now (perhaps none)."""
        value = self._call(
            "POST", f"/session/{self.id}/elements", {"using": "css selector", "value": css}
        )
        return [v[ELEMENT] for v in value]

    def gone(self, css: str, timeout: float = 10.0) -> None:
        """Wait until nothing matches `css`."""
        deadline = time.monotonic() + timeout
        while self.find_all(css):
            if time.monotonic() > deadline:
                raise AssertionError(f"{css} is still there after {timeout}s")
            time.sleep(0.1)

    def attribute(self, element: str, name: str) -> str | None:
        return self._call("GET", f"/session/{self.id}/element/{element}/attribute/{name}")

    def wait_for_attribute(self, css: str, name: str, want: str, timeout: float = 10.0) -> str:
        """Wait until the element matching `css` has attribute `name` equal to `want`."""
        deadline = time.monotonic() + timeout
        element = self.find(css, timeout)
        while True:
            value = self.attribute(element, name)
            if value == want:
                return element
            if time.monotonic() > deadline:
                raise AssertionError(f"{css}[{name}] is {value!r}, not {want!r}, after {timeout}s")
            time.sleep(0.1)

    def click(self, element: str) -> None:
        self._call("POST", f"/session/{self.id}/element/{element}/click", {})

    def type(self, element: str, text: str) -> None:
        """Send keys to `element` (WebDriver key codes: Enter is \ue007)."""
        self._call("POST", f"/session/{self.id}/element/{element}/value", {"text": text})

    def press_with_control(self, key: str) -> None:
        """Ctrl+`key` to the focused element, as key actions (what a keyboard sends)."""
        control = "\ue009"
        keys = [
            {"type": "keyDown", "value": control},
            {"type": "keyDown", "value": key},
            {"type": "keyUp", "value": key},
            {"type": "keyUp", "value": control},
        ]
        self._call(
            "POST",
            f"/session/{self.id}/actions",
            {"actions": [{"type": "key", "id": "keyboard", "actions": keys}]},
        )
        self._call("DELETE", f"/session/{self.id}/actions")

    def execute(self, script: str, *args: object) -> object:
        return self._call(
            "POST", f"/session/{self.id}/execute/sync", {"script": script, "args": list(args)}
        )

    def window_rect(self) -> dict:
        return self._call("GET", f"/session/{self.id}/window/rect")

    def set_window_size(self, width: int, height: int) -> dict:
        return self._call(
            "POST", f"/session/{self.id}/window/rect", {"width": width, "height": height}
        )

    def title(self) -> str:
        return self._call("GET", f"/session/{self.id}/title")

    def screenshot(self, name: str) -> Path:
        """Save the window as target/screenshots/<name>.png and return the path."""
        # WebKit hands out the last painted frame, which can predate the latest DOM change: take
        # shots until two in a row agree, so the file shows what the user sees now.
        png, previous = b"", None
        for _ in range(20):
            png = base64.b64decode(self._call("GET", f"/session/{self.id}/screenshot"))
            if png == previous:
                break
            previous = png
            time.sleep(0.25)
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOT_DIR / f"{name}.png"
        path.write_bytes(png)
        return path

    def close(self) -> None:
        try:
            self._call("DELETE", f"/session/{self.id}")
        finally:
            self.conn.close()


def wait_for_driver(timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = http.client.HTTPConnection(DRIVER_HOST, DRIVER_PORT, timeout=2)
            try:
                conn.request("GET", "/status")
                if conn.getresponse().status == 200:
                    return
            finally:
                conn.close()
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise WebDriverError(f"tauri-driver did not answer on {DRIVER_HOST}:{DRIVER_PORT}")
        time.sleep(0.2)


def read_png(path: Path) -> tuple[int, int, list[bytes]]:
    """Decode an 8-bit RGB or RGBA, non-interlaced PNG into (width, height, rows of pixels)."""
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG")
    pos, idat, width = 8, b"", 0
    height = channels = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            if depth != 8 or colour not in (2, 6) or interlace:
                raise ValueError(f"{path}: unsupported PNG (depth {depth}, colour {colour})")
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = prev[i]
            corner = prev[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
                line[i] = (line[i] + pred) & 0xFF
        rgb = bytes(b for i, b in enumerate(line) if channels == 3 or i % 4 != 3)
        rows.append(rgb)
        prev = line
    return width, height, rows
