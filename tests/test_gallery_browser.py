"""The built gallery site in a real browser (headless Chromium driven by Selenium): the
index and every example page load every image (thumbnails and figures) and log no console
errors. Screenshots of what a visitor first sees go to docs/_build/screenshots/."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from helmholtz.app import gallery

GALLERY = Path(__file__).resolve().parents[1] / "gallery"
EXAMPLE_PAGES = [f"auto_examples/{path.parent.name}/{path.stem}.html" for path in sorted(GALLERY.rglob("plot_*.py"))]
SCREENSHOTS = gallery.BUILD / "screenshots"
CHROMIUM = next(
    (path for name in ("chromium", "chromium-browser", "google-chrome") if (path := shutil.which(name))), None
)
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="the browser test of the gallery needs headless Chromium and its driver: "
    "`apt-get install chromium chromium-driver` (.ci/run installs them); skipped",
)

# Every image settled: loaded, or failed (complete with no width).
IMAGES_SETTLED = "return document.readyState === 'complete' && Array.from(document.images).every(i => i.complete)"
BROKEN_IMAGES = "return Array.from(document.images).filter(i => !(i.naturalWidth > 0)).map(i => i.src)"


@pytest.fixture(scope="module")
def site_url(quick_site):
    server = gallery.server(quick_site, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1366,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _visit(browser, url: str) -> dict:
    """Load ``url``; return its images, the broken ones, and its console errors."""
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get_log("browser")  # drop what earlier pages logged
    browser.get(url)
    WebDriverWait(browser, 30).until(lambda driver: driver.execute_script(IMAGES_SETTLED))
    return {
        "images": browser.execute_script("return document.images.length"),
        "broken": browser.execute_script(BROKEN_IMAGES),
        "errors": [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"],
    }


def test_every_page_loads_its_images_without_console_errors(browser, site_url):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    pages = ["index.html", "auto_examples/index.html", *EXAMPLE_PAGES]
    problems = {}
    for page in pages:
        seen = _visit(browser, f"{site_url}/{page}")
        if seen["images"] == 0:
            problems[page] = "no images at all"
        elif seen["broken"] or seen["errors"]:
            problems[page] = {"broken images": seen["broken"], "console errors": seen["errors"]}
        if page in ("index.html", "auto_examples/index.html") or page in EXAMPLE_PAGES[:1] + EXAMPLE_PAGES[-1:]:
            browser.save_screenshot(str(SCREENSHOTS / page.replace("/", "__").replace(".html", ".png")))
    assert not problems, f"pages with broken images or console errors: {problems}"


def test_a_broken_image_is_caught(browser, site_url, quick_site):
    """The checks above can fail: a page whose image is missing, and the 404 it logs."""
    page = quick_site / "broken-image-check.html"
    page.write_text('<html><body><img src="_images/no-such-figure.png"></body></html>')
    try:
        seen = _visit(browser, f"{site_url}/{page.name}")
    finally:
        page.unlink()
    assert seen["images"] == 1 and len(seen["broken"]) == 1
    assert any("404" in message for message in seen["errors"]), seen["errors"]
