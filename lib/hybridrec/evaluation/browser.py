"""Render a local HTML file in headless Chromium: a screenshot and the DOM after load.

Why a real browser: "the report renders with its images" is a property of what a browser does with
the file (data URIs decoded, layout done), which parsing the HTML cannot show. Chromium's own
command-line modes are enough (``--screenshot``, ``--dump-dom``): no DevTools protocol, no port
opened, no driver package. Each call uses a fresh temporary profile and blocks network access
(the report is self-contained; a request would be a bug, and it must not hang the render).

Chromium comes from the system (Debian's ``chromium``, installed by ``scripts/setup.sh`` when run
as root); ``find_chromium`` says how to get it when it is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
DEFAULT_WINDOW = (1280, 2000)
_BASE_FLAGS = (
    "--headless=new",
    "--no-sandbox",  # containers and root: the setuid sandbox is unavailable there
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--metrics-recording-only",
    "--mute-audio",
    "--hide-scrollbars",
    # Nothing outside the file: every host name resolves nowhere.
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=127.0.0.1:9",
)


class BrowserNotFound(RuntimeError):
    """No Chromium binary on the PATH."""


@dataclass(frozen=True)
class Rendering:
    """What the browser made of a page: the screenshot file and the serialised DOM after load."""

    screenshot: Path
    dom: str

    def body_attribute(self, name: str) -> str | None:
        """The value of an attribute of ``<body>`` in the dumped DOM (set by the page's scripts)."""
        body = re.search(r"<body\b[^>]*>", self.dom)
        if not body:
            return None
        m = re.search(rf'\s{re.escape(name)}="([^"]*)"', body.group(0))
        return m.group(1) if m else None


def find_chromium(candidates: Sequence[str] = CANDIDATES) -> str:
    """The path of the first Chromium-like browser on the PATH, else ``BrowserNotFound`` with the fix."""
    for name in candidates:
        path = shutil.which(name)
        if path:
            return path
    raise BrowserNotFound(
        f"no Chromium found on the PATH (looked for {', '.join(candidates)}): install Debian's chromium "
        "package (apt-get install chromium; scripts/setup.sh does it when run as root)"
    )


def _run(binary: str, args: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="hybridrec-chromium-") as profile:
        cmd = [binary, *_BASE_FLAGS, f"--user-data-dir={profile}", *args]
        env = {**os.environ, "HOME": profile}  # crash dumps and caches stay in the temporary profile
        try:
            done = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"{Path(binary).name} did not finish within {timeout:g} s: {' '.join(cmd)}") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stderr or "").strip().splitlines()[-15:])
        raise RuntimeError(f"{Path(binary).name} exited with {done.returncode}: {' '.join(cmd)}\n{tail}")
    return done


def render(
    html_path: Path,
    screenshot: Path,
    window: tuple[int, int] = DEFAULT_WINDOW,
    timeout: float = 120.0,
    settle_ms: int = 2000,
    binary: str | None = None,
) -> Rendering:
    """Open ``html_path`` in headless Chromium: write a PNG screenshot of the window, return the DOM.

    Two runs of the browser (one per mode), each waiting for the page's load event and then
    ``settle_ms`` of virtual time, so that ``load`` handlers have run before the DOM is dumped.
    """
    html_path = Path(html_path).resolve()
    if not html_path.is_file():
        raise FileNotFoundError(f"no HTML file at {html_path}")
    binary = binary or find_chromium()
    screenshot = Path(screenshot).resolve()
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    url = html_path.as_uri()
    common = [f"--window-size={window[0]},{window[1]}", f"--virtual-time-budget={settle_ms}"]
    shot_tmp = screenshot.with_name(screenshot.name + ".tmp.png")
    _run(binary, [*common, f"--screenshot={shot_tmp}", url], timeout)
    if not shot_tmp.is_file():
        raise RuntimeError(f"{Path(binary).name} wrote no screenshot for {url}")
    os.replace(shot_tmp, screenshot)
    dom = _run(binary, [*common, "--dump-dom", url], timeout).stdout
    return Rendering(screenshot=screenshot, dom=dom)
