"""Open a written report in headless Chromium: screenshot, broken images, console errors.

Used by the report's end-to-end test and to take the README's screenshot. Needs selenium
(the ``dev`` extra) and Debian's ``chromium`` + ``chromium-driver`` (``make setup``
installs them); a missing piece is a RuntimeError that says what to install.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser")
CHROMEDRIVER_CANDIDATES = ("/usr/bin/chromedriver", "chromedriver")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)


def _which(candidates: tuple[str, ...]) -> str | None:
    for name in candidates:
        found = shutil.which(name)
        if found:
            return found
    return None


def find_chromium() -> tuple[str, str]:
    """Paths of the chromium binary and of chromedriver, else a RuntimeError saying how to
    install them."""
    chromium = _which(CHROMIUM_CANDIDATES)
    driver = _which(CHROMEDRIVER_CANDIDATES)
    missing = [n for n, p in (("chromium", chromium), ("chromedriver", driver)) if p is None]
    if missing:
        raise RuntimeError(
            f"{' and '.join(missing)} not found: install Debian's chromium and chromium-driver "
            "(`make setup` does: apt-get install chromium chromium-driver)"
        )
    return str(chromium), str(driver)


@contextlib.contextmanager
def chromium_driver(width: int = 1280, height: int = 900) -> Iterator[Any]:
    """A headless Chromium WebDriver with a fresh profile and browser logging enabled."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:  # pragma: no cover - selenium is in the dev extra
        raise RuntimeError("selenium is not installed: pip install -e '.[dev]'") from exc
    chromium, driver_path = find_chromium()
    profile = tempfile.mkdtemp(prefix="emnet-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=driver_path, log_output=os.devnull)
    driver = webdriver.Chrome(service=service, options=options)
    try:
        driver.set_page_load_timeout(60)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@dataclass
class PageCheck:
    """What the browser saw: the screenshot, images that did not load, console errors."""

    title: str
    screenshot: bytes
    images: list[dict[str, Any]]
    broken_images: list[str]
    console_errors: list[str]
    console: list[dict[str, Any]] = field(default_factory=list)
    page_height: int = 0


_IMAGES_JS = """
return Array.from(document.images).map(img => ({
  src: img.getAttribute('src'), complete: img.complete,
  naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight}));
"""

_WAIT_IMAGES_JS = """
const done = arguments[arguments.length - 1];
Promise.all(Array.from(document.images).map(img => img.complete ? null :
  new Promise(r => { img.onload = r; img.onerror = r; }))).then(() => done(true));
"""


def check_page(
    index_html: str | os.PathLike[str],
    width: int = 1280,
    full_page: bool = True,
    height: int = 900,
) -> PageCheck:
    """Open ``index_html`` from disk (file://), wait for every image, and report.

    With ``full_page`` the viewport is resized to the document's height (at most 16,000
    pixels) before the screenshot, so it shows the whole report; otherwise the screenshot
    is the top ``height`` pixels.
    """
    path = Path(index_html).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"index_html: {path} does not exist")
    with chromium_driver(width=width, height=height) as driver:
        driver.set_script_timeout(60)
        driver.get(path.as_uri())
        driver.execute_async_script(_WAIT_IMAGES_JS)
        page_height = int(driver.execute_script("return document.documentElement.scrollHeight"))
        target = min(max(page_height, 600), 16000) if full_page else height
        _set_viewport(driver, width, target)
        driver.execute_async_script(_WAIT_IMAGES_JS)
        images = driver.execute_script(_IMAGES_JS)
        shot = driver.get_screenshot_as_png()
        console = driver.get_log("browser")
        title = driver.title
    broken = [i["src"] for i in images if not i["complete"] or int(i["naturalWidth"]) <= 0]
    errors = [
        f"{e.get('level')}: {e.get('message')}" for e in console if e.get("level") == "SEVERE"
    ]
    return PageCheck(
        title=title,
        screenshot=shot,
        images=images,
        broken_images=broken,
        console_errors=errors,
        console=console,
        page_height=page_height,
    )


def _set_viewport(driver: Any, width: int, height: int) -> None:
    """Resize the window so that the viewport (not the window) is ``width`` × ``height``."""
    driver.set_window_size(width, height)
    inner_w, inner_h = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    if (inner_w, inner_h) != (width, height):
        driver.set_window_size(2 * width - int(inner_w), 2 * height - int(inner_h))


def screenshot(
    index_html: str | os.PathLike[str],
    png: str | os.PathLike[str],
    width: int = 1280,
    palette: bool = False,
    top: int | None = None,
) -> PageCheck:
    """Write a screenshot of ``index_html`` to ``png`` (atomically): the whole page, or
    only its top ``top`` pixels.

    ``palette`` stores it with an adaptive 256-colour palette (a fraction of the size;
    good for the README)."""
    from emnet import _io

    if top is None:
        result = check_page(index_html, width=width, full_page=True)
    else:
        result = check_page(index_html, width=width, full_page=False, height=top)
    data = result.screenshot
    if palette:
        import io

        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            buf = io.BytesIO()
            im.convert("RGB").quantize(colors=256).save(buf, format="PNG", optimize=True)
        data = buf.getvalue()
    _io.write_bytes(png, data)
    return result


def main(argv: list[str] | None = None) -> int:
    """``python -m emnet.report.browser report/index.html docs/img/report.png --palette``:
    take the README's screenshot and say whether the page loaded cleanly."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m emnet.report.browser",
        description="Open a report in headless Chromium, check it, save a screenshot.",
    )
    parser.add_argument("index_html", help="the report's index.html")
    parser.add_argument("png", help="where to write the screenshot")
    parser.add_argument("--width", type=int, default=1280, help="window width in pixels")
    parser.add_argument(
        "--palette", action="store_true", help="store with a 256-colour palette (smaller file)"
    )
    parser.add_argument(
        "--top", type=int, metavar="PX", help="only the top PX pixels (default: the whole page)"
    )
    args = parser.parse_args(argv)
    seen = screenshot(
        args.index_html, args.png, width=args.width, palette=args.palette, top=args.top
    )
    print(
        f"{args.png}: page height {seen.page_height} px, {len(seen.images)} images, "
        f"{len(seen.broken_images)} broken, {len(seen.console_errors)} console errors"
    )
    for problem in seen.broken_images + seen.console_errors:
        print(f"  {problem}")
    return 1 if seen.broken_images or seen.console_errors else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
