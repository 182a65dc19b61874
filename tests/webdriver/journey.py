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
        if left >= 6:
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"the sandbox code never had 6 s to live (last: {left} s)")
        time.sleep(0.5)
    code = app.text(hint)
    assert re.fullmatch(r"\d{6}", code), f"the sandbox code reads {code!r}"
    app.type(field, code)
    # An Enter after the auto-submitted code does no harm (the automation contract says so).
    try:
        app.type(field, ENTER)
    except Exception:
        pass
    # The question is settled at once; AWS's verdict follows: signed in, or asked again.
    deadline = time.monotonic() + 30
    while True:
        if app.find_all(".dialog [role=alert]"):
            raise AssertionError(f"the sandbox refused its own code {code}")
        bar = app.find_all("[data-testid=identity-bar]")
        if bar and not app.find_all("[data-testid=mfa-code]") and "MFA" in app.text(bar[0]):
            return
        if time.monotonic() > deadline:
            raise AssertionError("not signed in 30 s after the code was typed")
        time.sleep(0.1)


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


def type_command(app: Session, keys: str, command: str, timeout: float = 10.0) -> None:
    """Type `command` a key at a time, each once the shell has echoed the one before, then Enter.

    WebKitWebDriver fires a key's events faster than any keyboard; xterm.js takes some keys
    straight from keydown and others from the textarea's input event a moment later, so a
    burst of synthetic keys can reach it out of order ("s leep300" for "sleep 300"). A person
    typing never outruns the echo; neither does this.
    """
    typed = ""
    for key in command:
        app.type(keys, key)
        typed += key
        deadline = time.monotonic() + timeout
        # The line is read without trailing blanks: a typed space shows once the next key does.
        while not current_line(app).endswith(typed.rstrip()):
            if time.monotonic() > deadline:
                raise AssertionError(f"the shell never echoed {typed!r}; its line: {current_line(app)!r}")
            time.sleep(0.02)
    app.type(keys, ENTER)


def current_line(app: Session) -> str:
    """The terminal's line with the cursor, without trailing blanks."""
    return app.execute(
        "const t = [...document.querySelectorAll('[data-testid=terminal]')]"
        ".find(e => e.offsetParent !== null);"
        "const row = t?.querySelector('.xterm-cursor')?.closest('.xterm-rows > div');"
        "return row ? row.textContent.replace(/\\u00a0/g, ' ').replace(/\\s+$/, '') : '';"
    )
