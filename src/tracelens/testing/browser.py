"""Look at an HTML report the way a reader does: in headless Chromium, from the standard library only.

Contract:

* :func:`find_chromium` returns the path of a Chromium/Chrome binary
  (``$TRACELENS_CHROMIUM`` first, then ``chromium``, ``chromium-browser``,
  ``google-chrome`` on ``PATH``) or None.
* :func:`measure_layout` renders a COPY of the page at a given window width
  and returns a :class:`Layout`: document height and width, the viewport
  width, and the box (page coordinates) of every element that has an ``id``.
  It works by injecting a small script that writes those facts into the DOM
  as JSON after the page has loaded, then reading ``--dump-dom``; the page
  itself is never modified on disk and no network or debugging port is used.
* :func:`screenshot` writes a PNG of the page at a given window size.

Both run Chromium with a throwaway profile directory, so concurrent calls do
not share state.
"""

from __future__ import annotations

import html as _html
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

#: writes the measured facts into <pre id="__layout"> once the page (images included) has loaded
_PROBE = """<script>
(function () {
  function measure() {
    var d = document.documentElement, boxes = {};
    document.querySelectorAll("[id]").forEach(function (el) {
      var b = el.getBoundingClientRect();
      boxes[el.id] = {top: b.top + window.scrollY, left: b.left + window.scrollX, width: b.width, height: b.height,
                      tag: el.tagName.toLowerCase(), open: el.tagName === "DETAILS" ? el.open : null};
    });
    var wide = [];
    document.querySelectorAll("body *").forEach(function (el) {
      var b = el.getBoundingClientRect();
      if (b.right > d.clientWidth + 1 && b.width > 0) wide.push(el.tagName.toLowerCase() + (el.id ? "#" + el.id : ""));
    });
    var out = {scrollHeight: d.scrollHeight, scrollWidth: d.scrollWidth, innerWidth: window.innerWidth,
               clientWidth: d.clientWidth, boxes: boxes, overflowing: wide.slice(0, 20),
               images: Array.prototype.map.call(document.images, function (i) { return i.complete && i.naturalWidth > 0; })};
    var pre = document.createElement("pre");
    pre.id = "__layout";
    pre.textContent = JSON.stringify(out);
    document.body.appendChild(pre);
  }
  if (document.readyState === "complete") measure(); else window.addEventListener("load", measure);
})();
</script>"""

_RESULT = re.compile(r'<pre id="__layout">(.*?)</pre>', re.S)


@dataclass(frozen=True)
class Layout:
    """What Chromium laid out: sizes in CSS pixels, boxes keyed by element id (page coordinates)."""

    width: int  #: window width asked for
    scroll_height: int
    scroll_width: int
    inner_width: int
    client_width: int
    boxes: dict
    overflowing: tuple[str, ...]
    images_loaded: tuple[bool, ...]

    @property
    def overflows_horizontally(self) -> bool:
        return self.scroll_width > self.client_width


def find_chromium() -> str | None:
    env = os.environ.get("TRACELENS_CHROMIUM")
    if env:
        return env if Path(env).exists() else shutil.which(env)
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(binary: str, args: list[str], timeout: float) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="tracelens-chromium-") as profile:
        cmd = [
            binary,
            "--headless",
            "--no-sandbox",  # CI runs as root, where the sandbox refuses to start
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-extensions",
            "--mute-audio",
            f"--user-data-dir={profile}",
            *args,
        ]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def measure_layout(html_text: str, width: int, *, height: int = 900, chromium: str | None = None,
                   timeout: float = 120) -> Layout:
    """Lay out a copy of ``html_text`` at ``width`` x ``height`` and return the measured facts."""
    binary = chromium or find_chromium()
    if binary is None:
        raise FileNotFoundError("no Chromium binary found (set TRACELENS_CHROMIUM or install chromium)")
    probe = html_text.replace("</body>", _PROBE + "</body>", 1) if "</body>" in html_text else html_text + _PROBE
    with tempfile.TemporaryDirectory(prefix="tracelens-layout-") as tmp:
        page = Path(tmp) / "page.html"
        page.write_text(probe, encoding="utf-8")
        r = _run(binary, [f"--window-size={width},{height}", "--virtual-time-budget=5000", "--dump-dom",
                          page.as_uri()], timeout)
    m = _RESULT.search(r.stdout)
    if not m:
        raise RuntimeError(f"Chromium returned no layout (exit {r.returncode}): {r.stderr[-2000:]}")
    d = json.loads(_html.unescape(m.group(1)))
    return Layout(
        width=width,
        scroll_height=int(d["scrollHeight"]),
        scroll_width=int(d["scrollWidth"]),
        inner_width=int(d["innerWidth"]),
        client_width=int(d["clientWidth"]),
        boxes=d["boxes"],
        overflowing=tuple(d["overflowing"]),
        images_loaded=tuple(d["images"]),
    )


def screenshot(html_path: str | Path, png_path: str | Path, width: int, height: int, *,
               chromium: str | None = None, timeout: float = 120) -> Path:
    """A PNG of the page at ``width`` x ``height`` CSS pixels (the top ``height`` pixels of the page)."""
    binary = chromium or find_chromium()
    if binary is None:
        raise FileNotFoundError("no Chromium binary found (set TRACELENS_CHROMIUM or install chromium)")
    out = Path(png_path).resolve()
    r = _run(binary, [f"--window-size={width},{height}", "--virtual-time-budget=5000", f"--screenshot={out}",
                      Path(html_path).resolve().as_uri()], timeout)
    if r.returncode != 0 or not out.exists():
        raise RuntimeError(f"Chromium screenshot failed (exit {r.returncode}): {r.stderr[-2000:]}")
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m tracelens.testing.browser REPORT.html [OUT.png] [--width 1400] [--height N] [--palette]``.

    Prints the measured layout (JSON); with OUT.png also writes a screenshot (the whole page unless
    ``--height``); ``--palette`` re-encodes it with 256 colours (Pillow) so it is small enough for docs/.
    """
    import argparse

    ap = argparse.ArgumentParser(description="Measure (and optionally screenshot) an HTML report in headless Chromium.")
    ap.add_argument("html")
    ap.add_argument("png", nargs="?")
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=0, help="screenshot height (default: the whole page)")
    ap.add_argument("--palette", action="store_true", help="re-encode the PNG with a 256-colour palette (needs Pillow)")
    a = ap.parse_args(argv)
    lay = measure_layout(Path(a.html).read_text(encoding="utf-8"), a.width)
    print(json.dumps({"width": a.width, "page_height": lay.scroll_height, "scroll_width": lay.scroll_width,
                      "client_width": lay.client_width, "overflowing": list(lay.overflowing),
                      "sections": {k: round(v["top"]) for k, v in lay.boxes.items() if v["tag"] in ("section", "details")}},
                     indent=1))
    if a.png:
        screenshot(a.html, a.png, a.width, a.height or lay.scroll_height)
        if a.palette:
            from PIL import Image

            with Image.open(a.png) as im:
                small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
            small.save(a.png, optimize=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
