"""The desktop window as a user first sees it: the placeholder page from ui/."""

from __future__ import annotations

import os
import unittest

from webdriver import Session, read_png, wait_for_driver

APP = os.environ["POSTERN_DESKTOP_BINARY"]
BACKGROUND = (0x14, 0x17, 0x1C)  # ui/src/style.css :root background


class PlaceholderWindow(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        wait_for_driver()
        cls.app = Session(APP)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.app.close()

    def test_heading_names_the_app(self) -> None:
        heading = self.app.text(self.app.find("h1#title"))
        self.assertEqual(heading, "Postern")
        self.assertEqual(self.app.title(), "Postern")

    def test_page_reaches_the_rust_side(self) -> None:
        # The version comes from Rust through IPC: the page really runs inside the shell.
        line = self.app.wait_for_text("#build", lambda t: t.startswith("Postern desktop"))
        self.assertRegex(line, r"^Postern desktop \d+\.\d+\.\d+$")

    def test_screenshot_shows_the_page(self) -> None:
        self.app.wait_for_text("#build", lambda t: t.startswith("Postern desktop"))
        path = self.app.screenshot("placeholder-window")
        width, height, rows = read_png(path)
        self.assertGreaterEqual(width, 600)
        self.assertGreaterEqual(height, 400)
        pixels = [row[i : i + 3] for row in rows[::4] for i in range(0, len(row), 12)]
        background = bytes(BACKGROUND)
        share_background = sum(p == background for p in pixels) / len(pixels)
        bright = sum(min(p) > 0xC0 for p in pixels)
        # The page's own dark background fills most of the window (not a blank or error page) and
        # light text is drawn on it (the heading and tagline were rendered).
        self.assertGreater(share_background, 0.8, f"background covers {share_background:.0%}")
        self.assertGreater(bright, 20, "no light text pixels: nothing was rendered")
        # The version line (ui/src/style.css `.build`, #7ec699) is painted with the version, not
        # the shorter "Starting…" placeholder: 21 monospace characters span well over 140 pixels.
        xs = [x for row in rows for x in range(width) if self._version_green(row, x)]
        self.assertTrue(xs, "the version line is not painted")
        self.assertGreater(max(xs) - min(xs), 140, "the version line still reads 'Starting…'")

    @staticmethod
    def _version_green(row: bytes, x: int) -> bool:
        r, g, b = row[3 * x], row[3 * x + 1], row[3 * x + 2]
        return abs(r - 0x7E) + abs(g - 0xC6) + abs(b - 0x99) < 60


if __name__ == "__main__":
    unittest.main()
