"""Real headless Chromium (Debian's chromium + chromedriver, driven by Selenium) and live services for it.

* `Chromium` starts one browser with the flags a root container needs, a
  fresh profile and an ordinary desktop User-Agent (the visitor counter
  ignores headless browsers), and wraps the DevTools calls the tests use:
  viewport, colour scheme, reduced motion, JavaScript off, full-page
  screenshots, console errors.
* `LiveService` runs the Flask app (``create_app``) with werkzeug's threaded
  server on a free loopback port, so the site and ``/api`` share an origin
  exactly as under gunicorn.
* `script_upstreams` makes one `FakeUpstream` answer as GitHub (activity and
  the issues blog), Spotify (accounts and API) and Telegram.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from .fakes import FakeUpstream, Reply

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
DESKTOP_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/124.0.0.0 Safari/537.36")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--force-color-profile=srgb")
ARTIFACTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "test-artifacts")


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.path.exists(path):
            return f"{path} is missing: run `make test`, which installs Debian's chromium and chromium-driver"
    return None


class Chromium:
    """One headless Chromium session; `close` ends it and removes its profile. ``flags`` are added to `FLAGS`
    (``--host-resolver-rules=...`` keeps a third party's host off the network)."""

    def __init__(self, width: int = 1280, height: int = 900, flags: tuple[str, ...] = ()):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.profile = tempfile.mkdtemp(prefix="vitae-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in (*FLAGS, *flags):
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={self.profile}")
        options.add_argument(f"--user-agent={DESKTOP_UA}")
        options.add_argument(f"--window-size={width},{height}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
        self.driver.set_page_load_timeout(30)
        self.driver.set_script_timeout(30)

    def close(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    # --- DevTools emulation -------------------------------------------------------

    def cdp(self, command: str, params: dict[str, Any] | None = None) -> Any:
        return self.driver.execute_cdp_cmd(command, params or {})

    def viewport(self, width: int, height: int = 900, mobile: bool = False) -> None:
        self.cdp("Emulation.setDeviceMetricsOverride",
                 {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})

    def media(self, scheme: str = "light", reduced_motion: bool = False) -> None:
        self.cdp("Emulation.setEmulatedMedia", {"features": [
            {"name": "prefers-color-scheme", "value": scheme},
            {"name": "prefers-reduced-motion", "value": "reduce" if reduced_motion else "no-preference"}]})

    def javascript(self, enabled: bool) -> None:
        self.cdp("Emulation.setScriptExecutionDisabled", {"value": not enabled})

    def reset(self) -> None:
        """Desktop viewport, light scheme, JavaScript on, empty HTTP cache, no cookies, console emptied."""
        self.javascript(True)
        self.cdp("Network.clearBrowserCache")
        self.cdp("Network.clearBrowserCookies")  # every service here is on 127.0.0.1: cookies ignore ports
        self.cdp("Emulation.clearDeviceMetricsOverride")
        self.media("light")
        self.console()

    # --- pages --------------------------------------------------------------------------

    def open(self, url: str, ready: bool = True, timeout: float = 15.0) -> None:
        """Load ``url``; with ``ready``, wait until the site's script has settled every widget."""
        self.driver.get(url)
        if ready:
            self.wait(lambda: self.js("return document.body && document.body.dataset.ready === 'true'"), timeout,
                      f"{url} never finished loading its widgets")

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def wait(self, condition: Callable[[], Any], timeout: float = 10.0, message: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {message}")
            time.sleep(0.05)

    def visible(self, selector: str) -> bool:
        return bool(self.js("const e = document.querySelector(arguments[0]); return !!e && "
                            "e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden';", selector))

    def text(self, selector: str) -> str:
        return self.js("const e = document.querySelector(arguments[0]); return e ? e.innerText : null;", selector)

    def console(self) -> list[dict]:
        """Console entries since the last call (the browser clears them once read)."""
        return self.driver.get_log("browser")

    def console_errors(self, allow_failed_requests: bool = False) -> list[str]:
        """SEVERE console entries; optionally without the browser's own "Failed to load resource" lines."""
        errors = [entry["message"] for entry in self.console() if entry["level"] == "SEVERE"]
        if allow_failed_requests:
            errors = [m for m in errors if "Failed to load resource" not in m]
        return errors

    def screenshot(self, name: str, full_page: bool = True) -> str:
        """A PNG of the page (whole length with ``full_page``) in test-artifacts/; returns its path."""
        os.makedirs(ARTIFACTS, exist_ok=True)
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            metrics = self.cdp("Page.getLayoutMetrics")
            size = metrics["cssContentSize"]
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
        data = base64.b64decode(self.cdp("Page.captureScreenshot", params)["data"])
        path = os.path.join(ARTIFACTS, f"{name}.png")
        with open(path, "wb") as handle:
            handle.write(data)
        return path

    def pdf_pages(self) -> int:
        """How many A4 pages the current page prints to (the print stylesheet applies)."""
        pdf = base64.b64decode(self.cdp("Page.printToPDF", {"paperWidth": 8.27, "paperHeight": 11.69,
                                                          "printBackground": False})["data"])
        os.makedirs(ARTIFACTS, exist_ok=True)
        with open(os.path.join(ARTIFACTS, "resume-print.pdf"), "wb") as handle:
            handle.write(pdf)
        counts = [int(n) for n in re.findall(rb"/Type\s*/Pages\b[^>]*?/Count\s+(\d+)", pdf)]
        counts += [int(n) for n in re.findall(rb"/Count\s+(\d+)[^>]*?/Type\s*/Pages\b", pdf)]
        return max(counts) if counts else len(re.findall(rb"/Type\s*/Page\b", pdf))


class LiveService:
    """The app served on a free loopback port by werkzeug's threaded server (until `stop`)."""

    def __init__(self, app):
        from werkzeug.serving import make_server

        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- fake upstream data -------------------------------------------------------------------

GITHUB_USER = "testauthor"
BLOG_REPO = f"{GITHUB_USER}/notes"
TELEGRAM_TOKEN = "123456:test-token"
XSS_BODY = "\n\n".join([
    "Before the payloads.",
    "<script>window.__xss = 'script'</script>",
    '<img src="x" onerror="window.__xss = \'onerror\'">',
    "[click me](javascript:window.__xss='link')",
    '<a href="javascript:window.__xss=\'raw-link\'">raw link</a>',
    '<iframe src="javascript:window.__xss=\'iframe\'"></iframe>',
    '<svg onload="window.__xss = \'svg\'"><circle r="4"></circle></svg>',
    '<p style="background:url(javascript:alert(1))" onclick="window.__xss=\'click\'">styled</p>',
    '<object data="data:text/html,<script>parent.__xss=1</script>"></object>',
    "After the payloads.",
])


def _iso(seconds_ago: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - seconds_ago))


def issue(number: int, title: str, body: str, labels: list[str], days_ago: float = 1.0,
          author: str = GITHUB_USER, **extra) -> dict:
    return {"number": number, "title": title, "body": body, "state": "open", "user": {"login": author},
            "labels": [{"name": name} for name in labels], "created_at": _iso(days_ago * 86400),
            "updated_at": _iso(days_ago * 86400), "html_url": f"https://github.com/{BLOG_REPO}/issues/{number}",
            **extra}


def comment(number: int, author: str, body: str, days_ago: float) -> dict:
    return {"id": number, "user": {"login": author, "html_url": f"https://github.com/{author}"}, "body": body,
            "created_at": _iso(days_ago * 86400), "updated_at": _iso(days_ago * 86400),
            "html_url": f"https://github.com/{BLOG_REPO}/issues/12#issuecomment-{number}"}


#: The comments of posts 14, 12 (a friendly one and a reply) and 13 (every XSS payload, in a comment).
COMMENTS = {
    14: [comment(500, "reader", "Which profiler did you use? `py-spy` has been good to me.", 0.5)],
    12: [comment(501, "reader", "Did you try **WAL** mode?", 8), comment(502, GITHUB_USER, "Yes: see below.", 7)],
    13: [comment(503, "mallory", XSS_BODY, 2)],
}


#: The post labelled ``pinned``: first on the blog's index although it is old.
PINNED = 3
POSTS = [
    issue(14, "Measuring before optimising", "# Method\n\nI **measured** first.\n\n## Code\n\n"
          "```python\nprint('hi')\n```\n\n"
          "| a | b |\n|---|---|\n| 1 | 2 |\n", ["published", "performance"], 1,
          reactions={"+1": 3, "heart": 2, "rocket": 1, "total_count": 6}, comments=1),
    issue(13, "Hostile input, handled", XSS_BODY, ["published", "security"], 3, comments=1),
    issue(12, "Running a queue on SQLite", "Short notes on **SQLite** as a queue. " + "word " * 400,
          ["published", "sqlite", "performance"], 9, comments=2, reactions={"+1": 5, "hooray": 2, "eyes": 1}),
] + [issue(number, f"Short note {number}", f"Note number {number}.",
           ["published", "notes", *(["pinned"] if number == PINNED else [])], 30 + 12 - number)
     for number in range(11, 0, -1)]
EVENTS = [
    {"type": "PushEvent", "repo": {"name": f"{GITHUB_USER}/vitae"}, "created_at": _iso(600),
     "payload": {"ref": "refs/heads/main", "size": 2, "head": "a" * 40,
                 "commits": [{"message": "Serve the site gzipped"}, {"message": "Tidy the footer"}]}},
    {"type": "PullRequestEvent", "repo": {"name": "upstream/project"}, "created_at": _iso(7200),
     "payload": {"action": "opened", "number": 7, "pull_request": {
         "number": 7, "title": "Fix the flaky retry test", "html_url": "https://github.com/upstream/project/pull/7"}}},
    {"type": "WatchEvent", "repo": {"name": "someone/tool"}, "created_at": _iso(86400), "payload": {}},
]


def script_upstreams(upstream: FakeUpstream, *, cover_url: str, playing: bool = True) -> None:
    """Answer as GitHub, Spotify and Telegram with the data above (``cover_url`` must be same-origin for the CSP)."""
    upstream.script("GET", f"/users/{GITHUB_USER}/events/public", Reply(200, json=EVENTS))
    upstream.script("GET", f"/users/{GITHUB_USER}/repos", Reply(200, json=[]))
    upstream.script("GET", f"/repos/{BLOG_REPO}/issues", Reply(200, json=POSTS))
    for post in POSTS:
        upstream.script("GET", f"/repos/{BLOG_REPO}/issues/{post['number']}", Reply(200, json=post))
    for number, comments in COMMENTS.items():
        upstream.script("GET", f"/repos/{BLOG_REPO}/issues/{number}/comments", Reply(200, json=comments))
    upstream.script("POST", "/api/token", Reply(200, json={"access_token": "fake-access", "token_type": "Bearer",
                                                           "expires_in": 3600}))
    track = {"type": "track", "name": "Harbour Lights", "duration_ms": 215000,
             "artists": [{"name": "The Gulls"}, {"name": "Saltwater"}],
             "album": {"name": "Low Tide", "images": [{"url": cover_url, "width": 300, "height": 300}]},
             "external_urls": {"spotify": "https://open.spotify.com/track/fake"}}
    if playing:
        upstream.script("GET", "/me/player/currently-playing",
                        Reply(200, json={"is_playing": True, "progress_ms": 61000, "item": track}))
    else:
        upstream.script("GET", "/me/player/currently-playing", Reply(204))
    upstream.script("GET", "/me/player/recently-played",
                    Reply(200, json={"items": [{"track": track, "played_at": _iso(3 * 3600)}]}))
    upstream.script("POST", f"/bot{TELEGRAM_TOKEN}/sendMessage",
                    Reply(200, json={"ok": True, "result": {"message_id": 1}}))


def hang_upstreams(upstream: FakeUpstream, seconds: float) -> None:
    """Every widget upstream holds its answer ``seconds`` (longer than the site waits)."""
    slow = Reply(500, json={"message": "too late"}, delay=seconds)
    for path in (f"/users/{GITHUB_USER}/events/public", f"/users/{GITHUB_USER}/repos", f"/repos/{BLOG_REPO}/issues",
                 "/me/player/currently-playing", "/me/player/recently-played"):
        upstream.script("GET", path, slow)
    upstream.script("POST", "/api/token", slow)


def upstream_settings(upstream: FakeUpstream) -> dict[str, str]:
    """Settings that point every widget (and Telegram) at ``upstream``."""
    return {
        "GITHUB_API_URL": upstream.url, "GITHUB_USERNAME": GITHUB_USER, "GITHUB_TOP_REPOS": "0",
        "BLOG_REPO": BLOG_REPO, "SPOTIFY_API_URL": upstream.url, "SPOTIFY_ACCOUNTS_URL": upstream.url,
        "SPOTIFY_CLIENT_ID": "fakeclient", "SPOTIFY_CLIENT_SECRET": "fake-secret",
        "SPOTIFY_REFRESH_TOKEN": "fake-refresh", "TELEGRAM_API_URL": upstream.url,
        "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN, "TELEGRAM_CHAT_ID": "42",
    }
