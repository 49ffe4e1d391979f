"""Headless Chromium for looking at a report the way a reader will: tests and screenshots.

Uses Selenium (the ``test`` extra) with Debian's ``chromium`` and ``chromedriver`` found on
``PATH`` (``scripts/setup.sh test`` installs them), started through an explicit
:class:`~selenium.webdriver.chrome.service.Service` so that Selenium Manager never tries
to download a driver. Nothing here is imported by the rest of the package.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from mixinvert.errors import MixinvertError

#: Executables looked up on PATH, in order.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
DRIVER_NAMES = ("chromedriver",)


class BrowserUnavailable(MixinvertError, RuntimeError):
    """No headless browser here (what is missing is in the message)."""


def find_browser() -> tuple[str, str]:
    """Paths of a Chromium binary and its chromedriver, or :class:`BrowserUnavailable`."""
    browser = next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)
    driver = next((p for p in map(shutil.which, DRIVER_NAMES) if p), None)
    missing = [n for n, p in (("chromium", browser), ("chromedriver", driver)) if p is None]
    if missing:
        raise BrowserUnavailable(f"{' and '.join(missing)} not found on PATH "
                                 f"(install with: bash scripts/setup.sh test)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        raise BrowserUnavailable("selenium is not installed (the `test` extra: bash scripts/setup.sh test)") from None
    return browser, driver


@contextmanager
def headless_chromium(width: int = 1400, height: int = 1000) -> Iterator:
    """A Selenium Chrome driver on headless Chromium, browser console logs enabled; quit on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = find_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--hide-scrollbars", "--autoplay-policy=no-user-gesture-required", f"--window-size={width},{height}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def full_page_screenshot(driver, png_path: str | os.PathLike, *, width: int = 1400) -> Path:
    """Resize the window to the whole page at ``width`` px and save a PNG of it."""
    height = int(driver.execute_script(
        "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)"))
    driver.set_window_size(width, min(max(height, 400), 16000))
    # the window's own frame takes part of its height: grow it by that much
    frame = int(driver.execute_script("return window.outerHeight - window.innerHeight"))
    if frame > 0:
        driver.set_window_size(width, min(max(height, 400), 16000) + frame)
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    if not driver.save_screenshot(str(png_path)):
        raise RuntimeError(f"the browser could not write a screenshot to {png_path}")
    return png_path
