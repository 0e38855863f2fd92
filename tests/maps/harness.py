"""Browser harness for map checks: Debian's headless Chromium driven by Playwright (the Python
package only: no browser is ever downloaded), and a real uvicorn server on 127.0.0.1.

Used by the browser tests beside this file, by bench/bench_maps.py and by
docs/make_screenshots.py.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
READY_JS = "() => !!(window.GeoComuna && window.GeoComuna.readyAt !== null)"
WAITING_JS = """() => window.GeoComuna ? {loaded: GeoComuna.loaded, ready: GeoComuna.ready,
    waiting: Object.keys(GeoComuna.waiting), drawn: GeoComuna.drawn} : 'no GeoComuna'"""
INSPECT_JS = """() => {
    const text = (sel) => Array.from(document.querySelectorAll(sel))
        .map((e) => e.textContent.trim());
    const sections = Array.from(document.querySelectorAll('.gc-legend-section'));
    return {
        layers: text('.leaflet-control-layers-overlays label'),
        legend: sections.filter((s) => !s.classList.contains('gc-off'))
                        .map((s) => s.getAttribute('data-gc-layer')),
        legend_titles: text('.gc-legend h4'),
        paths: document.querySelectorAll('path.leaflet-interactive').length,
        scale: text('.leaflet-control-scale-line'),
        canvases: document.querySelectorAll('.leaflet-tile-container canvas, canvas').length,
        images: document.querySelectorAll('img.leaflet-image-layer').length,
        drawn: window.GeoComuna ? window.GeoComuna.drawn : null,
        ready_ms: window.GeoComuna ? window.GeoComuna.readyAt : null,
        note: text('.gc-note').join(' '),
        // names on the map that are not hidden by a bigger one they would overlap
        labels: Array.from(document.querySelectorAll('.gc-label'))
            .filter((e) => e.style.visibility !== 'hidden').map((e) => e.textContent.trim()),
    };
}"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(playwright: Any) -> Any:
    """Debian's Chromium; a missing browser raises (tests fail, they never skip)."""
    if not CHROMIUM.exists():
        raise RuntimeError(
            f"{CHROMIUM} is missing: run scripts/setup.sh --test (installs Debian's chromium)"
        )
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )


@contextmanager
def serve(app: Any, **options: Any) -> Iterator[str]:
    """Run ``app`` with uvicorn on a free 127.0.0.1 port in a thread; yields its base URL.
    ``options``: more of uvicorn's Config (``http=`` a protocol, say)."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", **{"lifespan": "on", **options}
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@contextmanager
def other_site(html: str) -> Iterator[str]:
    """``html`` served at / by another origin (127.0.0.1 on another port: Chromium lets a
    loopback page frame loopback servers only); yields its URL."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    body = html.encode()

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    site = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{site.server_address[1]}/"
    finally:
        site.shutdown()
        thread.join(timeout=15)


@dataclass
class Visit:
    """What a page showed: console errors, failed requests and the map's state."""

    errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)


#: a Content-Security-Policy violation, in any frame, becomes a console error the visit lists
CSP_REPORTER = """document.addEventListener('securitypolicyviolation', (e) =>
    console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));"""


def watch(page: Any) -> Visit:
    visit = Visit()
    page.add_init_script(CSP_REPORTER)
    page.on("console", lambda m: visit.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: visit.errors.append(f"page error: {exc}"))
    page.on("requestfailed", lambda r: visit.failed.append(f"{r.url} {r.failure}"))
    return visit


def open_map(
    page: Any, url: str, *, timeout_ms: float = 20_000, screenshot: Path | None = None
) -> Visit:
    """Load a map page, wait until every shown layer is drawn, inspect it."""
    visit = watch(page)
    page.goto(url, wait_until="load")
    try:
        page.wait_for_function(READY_JS, timeout=timeout_ms)
    except Exception as exc:  # playwright's TimeoutError: say what the map waited for
        waiting = page.evaluate(WAITING_JS)
        raise AssertionError(f"{url} never got ready: {waiting}; {visit}") from exc
    visit.state = page.evaluate(INSPECT_JS)
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot))
    return visit


def offline(context: Any) -> list[str]:
    """Cut the network off for a browser context: anything but file:, data: and blob: is
    aborted (and listed)."""
    return _closed_but(context, ("file:", "data:", "blob:"))


def only_from(context: Any, origin: str) -> list[str]:
    """Every request to another site is aborted and listed: the network is closed but for
    our own server."""
    return _closed_but(context, (origin, "data:", "blob:"))


def _closed_but(context: Any, allowed: tuple[str, ...]) -> list[str]:
    """Abort (and list) every request of ``context`` whose URL starts with none of
    ``allowed``."""
    blocked: list[str] = []

    def handle(route: Any) -> None:
        url = route.request.url
        if url.startswith(allowed):
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    context.route("**/*", handle)
    return blocked
