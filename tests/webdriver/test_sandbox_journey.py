"""`postern-desktop --sandbox`, driven as a user would: the MFA modal at once, answered with the
demo device's code; an instance's shell; echo, Ctrl+C, a resized window followed by the remote
terminal; closing the tab. A screenshot per step (target/screenshots/)."""

from __future__ import annotations

import os
import re
import unittest

from journey import (
    screenshot_on_failure,
    ENTER,
    answer_mfa_with_the_sandbox_code,
    painted,
    screen_text,
    type_command,
    terminal_input,
    wait_for_screen,
)
from webdriver import Session, wait_for_driver

APP = os.environ["POSTERN_DESKTOP_BINARY"]


class SandboxJourney(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        wait_for_driver()
        cls.app = Session(APP, args=["--sandbox"])

    @classmethod
    def tearDownClass(cls) -> None:
        cls.app.close()

    def test_sign_in_open_a_shell_and_work_in_it(self) -> None:
        with screenshot_on_failure(self.app, 'sandbox'):
            app = self.app
            # --sandbox skips the first run: the MFA modal opens at once.
            app.find("[data-testid=mfa-code]", timeout=30)
            self.assertEqual(app.find_all("[data-testid=first-run]"), [])
            shot = app.screenshot("sandbox-01-mfa")
            self.assertGreater(painted(shot), 8)
            answer_mfa_with_the_sandbox_code(app)

            bar = app.wait_for_text(
                "[data-testid=identity-bar]", lambda t: "developer" in t, timeout=30
            )
            self.assertIn("SANDBOX", bar)
            self.assertRegex(bar, r"MFA \d+:\d\d left")

            # Reachable rows come first, and only they offer a shell.
            app.find("[data-testid=open-shell]", timeout=30)
            rows = app.find_all("[data-testid=instance-row]")
            self.assertGreater(len(rows), 0)
            first = rows[0]
            instance = app.attribute(first, "data-instance-id")
            self.assertRegex(instance or "", r"^i-[0-9a-f]+$")
            app.screenshot("sandbox-02-instances")

            # The search narrows the table.
            search = app.find("[data-testid=instance-search]")
            app.type(search, instance)
            app.wait_for_text("body", lambda _: len(app.find_all("[data-testid=instance-row]")) == 1)

            opener = app.find(f"[data-instance-id='{instance}'] [data-testid=open-shell]")
            app.click(opener)
            app.wait_for_attribute("[data-testid=terminal]", "data-session-state", "live", timeout=30)
            keys = terminal_input(app)

            # Something only the remote shell can compute.
            type_command(app, keys, "echo postern-$((6*7))")
            wait_for_screen(app, r"postern-42")
            app.screenshot("sandbox-03-echo")

            # Ctrl+C reaches the shell: it interrupts sleep, and the shell answers at once.
            type_command(app, keys, "sleep 300")
            wait_for_screen(app, r"sleep 300")
            app.press_with_control("c")
            type_command(app, keys, "echo back-$((2+3))")
            wait_for_screen(app, r"back-5", timeout=10)

            # The remote terminal follows the window's size.
            type_command(app, keys, "stty size")
            before = self._last_size(wait_for_screen(app, r"\n?\d+ \d+"))
            rect = app.window_rect()
            app.set_window_size(rect["width"] - 240, rect["height"] - 160)
            after = self._size_after_resize(keys, before)
            self.assertLess(after[1], before[1], f"columns {before} -> {after}")
            self.assertLess(after[0], before[0], f"rows {before} -> {after}")
            app.screenshot("sandbox-04-resized")

            # Closing the tab ends the session.
            app.click(app.find("button[aria-label^='Close ']"))
            app.gone("[data-testid=terminal]")
            app.screenshot("sandbox-05-closed")

    def _last_size(self, text: str) -> tuple[int, int]:
        sizes = re.findall(r"(?<![\d-])(\d{1,3}) (\d{1,3})(?!\d)", text)
        self.assertTrue(sizes, f"no stty size in:\n{text}")
        rows, cols = sizes[-1]
        return int(rows), int(cols)

    def _size_after_resize(self, keys: str, before: tuple[int, int]) -> tuple[int, int]:
        """Ask `stty size` until it differs from `before`: the window's new size reaches the
        shell through its own call, which may land after a command typed at once."""
        import time

        deadline = time.monotonic() + 20
        while True:
            type_command(self.app, keys, "clear; stty size")
            time.sleep(0.7)
            text = screen_text(self.app)
            sizes = re.findall(r"(?<![\d-])(\d{1,3}) (\d{1,3})(?!\d)", text)
            if sizes and (int(sizes[-1][0]), int(sizes[-1][1])) != before:
                return int(sizes[-1][0]), int(sizes[-1][1])
            if time.monotonic() > deadline:
                raise AssertionError(f"stty size still says {before}:\n{text}")


if __name__ == "__main__":
    unittest.main()
