"""F1: a newcomer with no AWS profile opens Postern, sees the first run and tries the sandbox."""

from __future__ import annotations

import os
import unittest

from journey import screenshot_on_failure, answer_mfa_with_the_sandbox_code, painted
from webdriver import Session, wait_for_driver

APP = os.environ["POSTERN_DESKTOP_BINARY"]


class FirstRun(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        wait_for_driver()
        cls.app = Session(APP)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.app.close()

    def test_first_run_into_the_sandbox(self) -> None:
        with screenshot_on_failure(self.app, 'f1'):
            app = self.app
            self.assertEqual(app.title(), "Postern")
            first = app.find("[data-testid=first-run]", timeout=20)
            self.assertIn("Welcome to Postern", app.text(first))
            button = app.find("[data-testid=try-sandbox]")
            # "Try the sandbox" has the first focus: Enter starts it.
            focused = app.execute(
                "return document.activeElement?.dataset?.testid ?? null;"
            )
            self.assertEqual(focused, "try-sandbox")
            shot = app.screenshot("f1-01-first-run")
            self.assertGreater(painted(shot), 8, "the first run looks blank")

            app.click(button)
            app.find("[data-testid=mfa-code]", timeout=30)
            app.screenshot("f1-02-mfa-modal")
            answer_mfa_with_the_sandbox_code(app)
            bar = app.wait_for_text(
                "[data-testid=identity-bar]", lambda t: "developer" in t, timeout=30
            )
            self.assertIn("SANDBOX", bar)
            app.find("[data-testid=instance-row]", timeout=30)
            app.screenshot("f1-03-signed-in")


if __name__ == "__main__":
    unittest.main()
