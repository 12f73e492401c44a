"""The self-hosted pieces that carry the CDN's origin secret, against the real app on loopback.

With ``ORIGIN_SECRET`` in ``.env`` the app answers only requests carrying it, every route alike: compose
hands the secret to Caddy (``Caddyfile``, run by the machine's caddy), which sends it on every request it
proxies (as CloudFront does on AWS), and the image's health check sends it too.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading

import pytest
from werkzeug.serving import make_server

from ..dockerfile import parse_dockerfile
from ..helpers import ROOT
from ..servers import _ServerProcess
from .test_compose import http

pytestmark = pytest.mark.server

SECRET = "compose-origin-secret-0123456789"


class Caddy(_ServerProcess):
    """The repository's Caddyfile on a free loopback port over plain HTTP, proxying to ``app`` (host:port)."""

    def __init__(self, folder, app: str):
        self.binary = shutil.which("caddy")
        assert self.binary, "caddy (Debian) is installed by `make test` (APT_PACKAGES)"
        super().__init__()
        text = (ROOT / "Caddyfile").read_text(encoding="utf-8")
        assert "reverse_proxy app:8000" in text and text.count("\n{\n\tservers {") == 1
        # Debian's caddy (2.6) knows request buffering by its old name, as the compose test's stand-in does.
        text = re.sub(r"request_buffers.*", "buffer_requests", text)
        self.config = folder / "Caddyfile"
        # The compose service's address becomes the test's app; no admin endpoint (its port is the machine's).
        text = text.replace("\n{\n\tservers {", "\n{\n\tadmin off\n\tdefault_bind 127.0.0.1\n\tservers {")
        self.config.write_text(text.replace("app:8000", app), encoding="utf-8")
        self.folder = folder

    def start(self, monkeypatch) -> Caddy:
        monkeypatch.setenv("SITE_DOMAIN", f"http://127.0.0.1:{self.port}")
        monkeypatch.setenv("XDG_DATA_HOME", str(self.folder / "data"))
        monkeypatch.setenv("XDG_CONFIG_HOME", str(self.folder / "config"))
        self._launch([self.binary, "run", "--config", str(self.config), "--adapter", "caddyfile"])
        return self


@pytest.fixture
def serving(make_app, tmp_path):
    """Serve an app built with the given settings on a loopback port while the test runs; yields its factory."""
    servers = []

    def serve(**config) -> str:
        site = tmp_path / "site"
        site.mkdir(exist_ok=True)
        (site / "index.html").write_text("<!doctype html><title>Home</title>", encoding="utf-8")
        server = make_server("127.0.0.1", 0, make_app(SITE_DIR=str(site), **config), threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"127.0.0.1:{server.server_port}"
    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def status(url: str, headers: dict[str, str] | None = None) -> int:
    return http(url, headers=headers)[0]


@pytest.mark.parametrize("secret", [SECRET, ""], ids=["origin-secret-set", "origin-secret-unset"])
def test_caddy_sends_the_origin_secret_the_app_asks_for(serving, tmp_path, monkeypatch, secret):
    app = serving(ORIGIN_SECRET=secret)
    monkeypatch.setenv("ORIGIN_SECRET", secret)  # what compose passes to the caddy service from .env
    caddy = Caddy(tmp_path, app).start(monkeypatch)
    try:
        for path in ("/", "/api/health", "/api/visitors"):
            assert status(f"http://127.0.0.1:{caddy.port}{path}") == 200, path
            assert status(f"http://127.0.0.1:{caddy.port}{path}", {"X-Origin-Verify": "forged"}) == 200, path
            assert status(f"http://{app}{path}") == (403 if secret else 200), path  # around Caddy
    finally:
        caddy.stop()


def test_a_visitor_cannot_send_a_secret_through_caddy(serving, tmp_path, monkeypatch):
    """Caddy sets the header, never passes the visitor's: without a secret of its own the app's stays unreached."""
    app = serving(ORIGIN_SECRET=SECRET)
    monkeypatch.setenv("ORIGIN_SECRET", "")  # Caddy not given the secret: a misconfiguration, refused
    caddy = Caddy(tmp_path, app).start(monkeypatch)
    try:
        assert status(f"http://127.0.0.1:{caddy.port}/", {"X-Origin-Verify": SECRET}) == 403
    finally:
        caddy.stop()


@pytest.mark.parametrize(("sent", "healthy"), [(SECRET, True), ("", False)])
def test_the_images_health_check_sends_the_origin_secret(serving, sent, healthy):
    """The Dockerfile's HEALTHCHECK (compose's app uses the same) run against an app that requires the secret."""
    command, _ = parse_dockerfile((ROOT / "Dockerfile").read_text(encoding="utf-8"))[-1].healthcheck
    assert command[0] == "python"
    app = serving(ORIGIN_SECRET=SECRET)
    environ = {"PATH": "/usr/bin:/bin", "BIND": app, "ORIGIN_SECRET": sent}
    result = subprocess.run([sys.executable, *command[1:]], env=environ, capture_output=True, text=True, timeout=30)
    assert (result.returncode == 0) is healthy, result.stderr
