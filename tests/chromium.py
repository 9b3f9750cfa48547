"""Debian's Chromium driven headless through its chromedriver: the one way the suite opens a real browser
(the MLflow UI and the coder page tests). A module beside conftest.py so every test folder imports it."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import REPO

ARTIFACTS = REPO / "test-artifacts"
# Debian's Chromium as root on a machine with no network but loopback (see the env notes).
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                  "--no-first-run", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--window-size=1920,1000"]


def headless_chromium(profile: Path, prefs: dict | None = None):
    """Debian's chromium through its chromedriver, headless, with its profile in ``profile``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and chromedriver, "Debian's chromium and chromium-driver are missing: run `make system-deps`"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    if prefs:
        options.add_experimental_option("prefs", prefs)
    return webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)


def keep_screenshot(driver, tmp_path: Path, name: str) -> Path:
    """A screenshot in the test's folder, and a copy at a stable, git-ignored path to look at after a run."""
    shot = tmp_path / name
    driver.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(shot, ARTIFACTS / name)
    print(f"screenshot: {shot} (copy: {ARTIFACTS / name})")
    return shot
