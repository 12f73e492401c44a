"""The resume as a PDF: a rendered page printed by headless Chromium, its metadata completed with pypdf.

`print_pdf` takes a rendered page (a file of the build, served from its
site folder on a loopback port, or an ``http(s)`` URL) and writes the PDF
Chromium's own "Save as PDF" would give, through the DevTools protocol's
``Page.printToPDF``: the site's print stylesheet, A4 or US Letter, no
header or footer, tagged for accessibility (``generateTaggedPDF``) with an
outline from the headings, text selectable, links kept as link
annotations, the fonts used embedded as subsets. Scripts are off while it
prints: the resume is complete without them, and the live cards are hidden
in print anyway. The title comes from the page's ``<title>``; pypdf then
sets the author and the document language (``/Lang`` in the catalogue,
which Chromium leaves out), and asks viewers to show the title rather than
the file name.

Why Chromium and not WeasyPrint: it is the engine the site is already
tested in (Debian's ``chromium`` package, which ``make test`` installs), so
the PDF is exactly what a visitor's print preview shows, with no second
CSS engine to keep the stylesheet working in; it tags the PDF and embeds
the fonts by itself; and it is an ordinary system package, where
WeasyPrint needs Pango and its own font stack. It is not in the Python
requirements and never in the Lambda package: `find_browser` looks for it
where the site is built, and the build goes on without the PDF when there
is none (`service.site.build`). pypdf (pure Python) is a build-time
requirement only (``requirements-site.txt``).

The browser is driven over ``--remote-debugging-pipe`` (file descriptors
3 and 4, messages ended by a NUL byte), so no WebSocket client and no
listening debugging port are needed. `PdfUnavailable` is raised, saying
why, when there is no browser, it fails, or it takes longer than
``timeout`` seconds.
"""

from __future__ import annotations

import base64
import functools
import http.server
import io
import json
import os
import select
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import quote, urlsplit

#: Paper sizes the owner can choose (``SITE_PDF_PAPER``), in inches as ``Page.printToPDF`` takes them.
PAPERS = {"a4": (8.27, 11.69), "letter": (8.5, 11.0)}
#: Names a Chromium goes by on PATH (Debian's package, other distributions', Google's build).
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
_FLAGS = ("--headless", "--disable-gpu", "--no-first-run", "--disable-background-networking",
          "--disable-component-update", "--disable-sync", "--disable-extensions", "--disable-default-apps",
          "--disable-dev-shm-usage", "--mute-audio", "--hide-scrollbars", "--force-color-profile=srgb",
          "--remote-debugging-pipe")


class PdfUnavailable(Exception):
    """No PDF could be printed: no browser, the browser failed, or it took too long (the message says which)."""


def find_browser(configured: str = "") -> str | None:
    """The Chromium to print with: ``configured`` (a path or a name on PATH) or the first of `BROWSER_NAMES`."""
    for name in ((configured,) if configured else BROWSER_NAMES):
        found = shutil.which(name)
        if found:
            return found
    return None


def print_pdf(page: str, output: str, *, root: str | None = None, paper: str = "a4", author: str = "",
              lang: str = "", browser: str | None = None, timeout: float = 60.0) -> int:
    """Print ``page`` to the PDF file ``output``; return its number of pages.

    ``page`` is an ``http(s)`` URL, or an HTML file under ``root`` (default: the file's folder), which is
    served on a loopback port for the time of the print so that the page's ``/assets/...`` load.
    ``paper`` is a key of `PAPERS`; ``author`` and ``lang`` go into the document's metadata (the title
    is the page's ``<title>``). ``browser`` is the Chromium to run (default: `find_browser`). ``output``
    is replaced only when the print succeeded. Raises `PdfUnavailable`, and ``ValueError`` for an
    unknown paper size.
    """
    if paper not in PAPERS:
        raise ValueError(f"unknown paper size {paper!r}; expected one of {', '.join(PAPERS)}")
    browser = browser or find_browser()
    if not browser:
        raise PdfUnavailable(f"no Chromium found on PATH (looked for {', '.join(BROWSER_NAMES)})")
    width, height = PAPERS[paper]
    with _page_url(page, root) as url, _Chromium(browser, timeout) as chromium:
        data = chromium.print(url, {"paperWidth": width, "paperHeight": height, "printBackground": False,
                                    "displayHeaderFooter": False, "preferCSSPageSize": False,
                                    "generateTaggedPDF": True, "generateDocumentOutline": True,
                                    "transferMode": "ReturnAsBase64"})
    data, pages = _with_metadata(data, author=author, lang=lang)
    folder = os.path.dirname(os.path.abspath(output))
    os.makedirs(folder, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=".resume-", suffix=".pdf", dir=folder)
    with os.fdopen(handle, "wb") as file:
        file.write(data)
    os.chmod(temp, 0o644)  # mkstemp made it 0600; a web root is readable by the server's user
    os.replace(temp, output)
    return pages


def _with_metadata(data: bytes, *, author: str, lang: str) -> tuple[bytes, int]:
    """``data`` with its author and language set and the title shown by viewers; and its page count."""
    try:
        from pypdf import PdfReader, PdfWriter
        from pypdf.generic import BooleanObject, DictionaryObject, NameObject, TextStringObject
    except ImportError:
        raise PdfUnavailable("pypdf is missing: install requirements-site.txt (make site does)") from None
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    if author:
        writer.add_metadata({"/Author": author})
    root = writer.root_object
    if lang:
        root[NameObject("/Lang")] = TextStringObject(lang)
    preferences = root.get("/ViewerPreferences")
    preferences = preferences.get_object() if preferences is not None else DictionaryObject()
    preferences[NameObject("/DisplayDocTitle")] = BooleanObject(True)
    root[NameObject("/ViewerPreferences")] = preferences
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue(), len(writer.pages)


# --- the page, served from its folder ----------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def _page_url(page: str, root: str | None) -> Iterator[str]:
    """The URL to load for ``page``: itself when it is a URL, else a loopback server's for the file."""
    if urlsplit(page).scheme in ("http", "https"):
        yield page
        return
    page = os.path.abspath(page)
    if not os.path.isfile(page):
        raise PdfUnavailable(f"{page} is not a file")
    root = os.path.abspath(root or os.path.dirname(page))
    relative = os.path.relpath(page, root)
    if relative.startswith(".."):
        raise ValueError(f"{page} is not under {root}")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(_QuietHandler, directory=root))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/{quote(relative.replace(os.sep, '/'))}"
    finally:
        server.shutdown()
        server.server_close()


# --- the browser, over the DevTools pipe ---------------------------------------------------------------


class _Chromium:
    """One headless Chromium with a throw-away profile, spoken to over fds 3 (commands) and 4 (answers)."""

    def __init__(self, browser: str, timeout: float):
        self.browser = browser
        self.deadline = time.monotonic() + timeout
        self.timeout = timeout
        self.next_id = 0
        self.buffer = b""
        self.events: list[dict] = []

    def __enter__(self) -> _Chromium:
        self.profile = tempfile.mkdtemp(prefix="vitae-pdf-")
        self.log = open(os.path.join(self.profile, "browser.log"), "w+b")
        to_browser, self.commands = os.pipe()
        self.answers, from_browser = os.pipe()
        flags = [*_FLAGS, f"--user-data-dir={self.profile}"]
        if os.geteuid() == 0:
            flags.append("--no-sandbox")  # Chromium refuses to start as root with its sandbox
        try:
            self.pid = os.posix_spawn(self.browser, [self.browser, *flags, "about:blank"], os.environ, file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, self.log.fileno(), 1), (os.POSIX_SPAWN_DUP2, self.log.fileno(), 2),
                (os.POSIX_SPAWN_DUP2, to_browser, 3), (os.POSIX_SPAWN_DUP2, from_browser, 4)])
        except OSError as exc:
            self._cleanup()
            raise PdfUnavailable(f"{self.browser} could not be started: {exc}") from None
        finally:
            os.close(to_browser)
            os.close(from_browser)
        return self

    def __exit__(self, *exc_info: object) -> None:
        with suppress(PdfUnavailable, OSError):
            self.send("Browser.close")
        end = time.monotonic() + 5
        while os.waitpid(self.pid, os.WNOHANG) == (0, 0):  # until it has exited and been reaped
            if time.monotonic() > end:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                break
            time.sleep(0.05)
        self._cleanup()

    def _cleanup(self) -> None:
        for fd in (self.commands, self.answers):
            with suppress(OSError):
                os.close(fd)
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def _failed(self, what: str) -> PdfUnavailable:
        self.log.seek(0)
        tail = self.log.read()[-600:].decode(errors="replace").strip()
        return PdfUnavailable(f"{os.path.basename(self.browser)} {what}" + (f"; it said: {tail}" if tail else ""))

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send one command and return its result (events that arrive meanwhile are kept for `wait_event`)."""
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        try:
            os.write(self.commands, json.dumps(message).encode() + b"\0")
        except OSError:
            raise self._failed(f"stopped before {method}") from None
        while True:
            reply = self._read()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise self._failed(f"refused {method}: {reply['error'].get('message')}")
                return reply.get("result") or {}
            self.events.append(reply)

    def wait_event(self, method: str, session: str) -> dict:
        while True:
            for event in self.events:
                if event.get("method") == method and event.get("sessionId") == session:
                    self.events.remove(event)
                    return event.get("params") or {}
            self.events.append(self._read())

    def _read(self) -> dict:
        while b"\0" not in self.buffer:
            left = self.deadline - time.monotonic()
            if left <= 0 or not select.select([self.answers], [], [], left)[0]:
                raise self._failed(f"did not finish the PDF within {self.timeout:g} s")
            chunk = os.read(self.answers, 1 << 20)
            if not chunk:
                raise self._failed("stopped unexpectedly")
            self.buffer += chunk
        message, _, self.buffer = self.buffer.partition(b"\0")
        return json.loads(message)

    def print(self, url: str, options: dict) -> bytes:
        """The PDF of ``url`` printed with ``Page.printToPDF``'s ``options``, scripts off."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.send("Emulation.setScriptExecutionDisabled", {"value": True}, session)
        self.send("Page.enable", session=session)
        self.send("Network.enable", session=session)
        navigation = self.send("Page.navigate", {"url": url}, session)
        if navigation.get("errorText"):
            raise PdfUnavailable(f"{url} did not load: {navigation['errorText']}")
        self.wait_event("Page.loadEventFired", session)
        status = next((event["params"]["response"]["status"] for event in self.events
                       if event.get("method") == "Network.responseReceived" and event.get("sessionId") == session
                       and event["params"].get("type") == "Document"), None)
        if status is not None and status != 200:
            raise PdfUnavailable(f"{url} answered {status}")
        return base64.b64decode(self.send("Page.printToPDF", options, session)["data"])
