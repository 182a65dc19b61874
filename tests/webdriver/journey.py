"""Steps the desktop journeys share: the app's window through the automation contract
(data-testids, README "Automation contract")."""

from __future__ import annotations

import contextlib
import re
import time

from webdriver import Session, read_png

ENTER = "\ue007"


def screen_text(app: Session) -> str:
    """What the active terminal shows (debug builds draw with xterm's DOM renderer)."""
    return app.execute(
        "const t = [...document.querySelectorAll('[data-testid=terminal]')]"
        ".find(e => e.offsetParent !== null);"
        "const rows = t ? t.querySelector('.xterm-rows') : null;"
        "return rows ? [...rows.children].map(r => r.textContent).join('\\n') : '';"
    )


def wait_for_screen(app: Session, pattern: str, timeout: float = 15.0) -> str:
    """Wait until the terminal's screen matches `pattern` (a regex); the screen."""
    deadline = time.monotonic() + timeout
    while True:
        text = screen_text(app)
        if re.search(pattern, text):
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"the terminal never showed {pattern!r}; it shows:\n{text}")
        time.sleep(0.1)


def answer_mfa_with_the_sandbox_code(app: Session) -> None:
    """Read the demo device's code from the modal and type it (six digits send themselves)."""
    field = app.find("[data-testid=mfa-code]", timeout=30)
    hint = app.find("[data-testid=sandbox-mfa-code]", timeout=15)
    # Type a code that still has a few seconds to live (it changes every 30 s).
    deadline = time.monotonic() + 40
    while True:
        left = app.execute(
            "const m = document.querySelector('.demo .muted')?.textContent ?? '';"
            "return Number((m.match(/(\\d+) s/) || [0, 0])[1]);"
        )
        if left >= 6 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    code = app.text(hint)
    assert re.fullmatch(r"\d{6}", code), f"the sandbox code reads {code!r}"
    app.type(field, code)
    # An Enter after the auto-submitted code does no harm (the automation contract says so).
    try:
        app.type(field, ENTER)
    except Exception:
        pass
    app.gone("[data-testid=mfa-code]", timeout=30)


def terminal_input(app: Session) -> str:
    """xterm's textarea in the visible terminal (where keys go)."""
    for element in app.find_all("[data-testid=terminal] textarea"):
        visible = app.execute("return arguments[0].closest('.view').hidden === false;", {
            "element-6066-11e4-a52e-4f735466cecf": element
        })
        if visible:
            return element
    raise AssertionError("no visible terminal")


def painted(path) -> int:
    """How many distinct colours a screenshot has (a blank or error page has very few)."""
    _, _, rows = read_png(path)
    colours = set()
    for row in rows[::7]:
        for i in range(0, len(row) - 2, 21):
            colours.add(bytes(row[i : i + 3]))
    return len(colours)


@contextlib.contextmanager
def screenshot_on_failure(app: Session, name: str):
    """Keep a screenshot of the window as it was when a step failed (`<name>-failed.png`)."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            app.screenshot(f"{name}-failed")
        raise
