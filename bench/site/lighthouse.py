"""`make bench-site`: Lighthouse scores of the home page, its German translation, the blog index, a
server-rendered post page and a search (``python bench/site/lighthouse.py home home-de`` scores only those).

Builds the site into a temporary folder (``SITE_URL`` = the local address,
so canonical links and the sitemap match what Lighthouse loads), starts the
service under gunicorn on a free loopback port with SQLite storage and fake
GitHub/Spotify/Telegram upstreams (every widget has data, as on a configured
site), then runs Lighthouse (``bench/site/node_modules``, Debian's Chromium)
on both pages, once with its default mobile emulation (simulated slow 4G, a
slowed CPU) and once with ``--preset=desktop``. Prints the performance,
accessibility, best-practices and SEO scores and the home page's transfer
size; the full JSON reports go to ``bench/results/``.

A benchmark, not a test: nothing fails below a threshold.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)

from service.features import WIDGETS  # noqa: E402
from service.site.build import SiteOptions, build  # noqa: E402
from tests.browser import script_upstreams, upstream_settings  # noqa: E402
from tests.fakes import FakeUpstream  # noqa: E402
from tests.servers import free_port, wait_for_port  # noqa: E402

CHROME_PATH = os.environ.get("CHROME_PATH", "/usr/bin/chromium")
CHROME_FLAGS = "--headless --no-sandbox --disable-gpu --disable-background-networking"
CATEGORIES = ("performance", "accessibility", "best-practices", "seo")
# the blog index and the post are rendered by the app (service/blog/pages.py)
PAGES = (("home", "/"), ("home-de", "/de/"), ("blog", "/blog/"), ("post", "/blog/14/measuring-before-optimising"),
         ("search", "/blog/?q=sqlite+queue"))
RESULTS = os.path.join(ROOT, "bench", "results")
VENV_BIN = os.path.join(ROOT, ".venv", "bin")


def lighthouse(url: str, report: str, desktop: bool) -> dict:
    """Run Lighthouse once; the parsed JSON report."""
    command = [os.path.join(HERE, "node_modules", ".bin", "lighthouse"), url, "--quiet", "--output=json",
               f"--output-path={report}", f"--chrome-flags={CHROME_FLAGS}",
               f"--only-categories={','.join(CATEGORIES)}"]
    if desktop:
        command.append("--preset=desktop")
    subprocess.run(command, check=True, env={**os.environ, "CHROME_PATH": CHROME_PATH}, timeout=300)
    with open(report, encoding="utf-8") as handle:
        return json.load(handle)


def main(names: list[str]) -> int:
    """Score the pages named in ``names`` (all of `PAGES` when empty)."""
    unknown = sorted(set(names) - {name for name, _ in PAGES})
    if unknown:
        print(f"unknown page {unknown[0]!r}; expected some of {', '.join(name for name, _ in PAGES)}", file=sys.stderr)
        return 2
    pages = [(name, path) for name, path in PAGES if not names or name in names]
    os.makedirs(RESULTS, exist_ok=True)
    work = tempfile.mkdtemp(prefix="vitae-bench-site-")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    build(os.path.join(ROOT, "site", "resume.json"), os.path.join(work, "site"),
          SiteOptions(site_url=base, widgets=WIDGETS, pdf="auto"))  # the home page with its PDF link
    upstream = FakeUpstream().start()
    script_upstreams(upstream, cover_url=f"{base}/photo.svg")
    env = {**os.environ, **upstream_settings(upstream), "SITE_URL": base, "SITE_DIR": os.path.join(work, "site"),
           "STORAGE_URL": f"sqlite:///{work}/vitae.db", "SECRET_KEY": "bench-site", "ACCESS_LOG": "0",
           "VITAE_INSTANCE_PATH": os.path.join(work, "instance"), "LOG_LEVEL": "WARNING"}
    subprocess.run([os.path.join(VENV_BIN, "flask"), "--app", "service.wsgi", "storage", "init"], cwd=ROOT, env=env,
                   check=True, capture_output=True)
    server = subprocess.Popen([os.path.join(VENV_BIN, "gunicorn"), "--config", "gunicorn.conf.py", "--bind",
                               f"127.0.0.1:{port}", "service.wsgi:app"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = []
    try:
        wait_for_port(port, timeout=30)
        for preset in ("mobile", "desktop"):
            for name, path in pages:
                report = lighthouse(base + path, os.path.join(RESULTS, f"lighthouse-{name}-{preset}.json"),
                                    desktop=preset == "desktop")
                scores = {c: round(100 * (report["categories"][c]["score"] or 0)) for c in CATEGORIES}
                weight = report["audits"]["total-byte-weight"]["numericValue"]
                rows.append((name, preset, scores, weight))
                print(f"{name:7} {preset:8} " + "  ".join(f"{c} {scores[c]:3}" for c in CATEGORIES)
                      + f"  transfer {weight / 1024:.1f} KB", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=20)
        upstream.stop()
    print(f"\nLighthouse {_version()}, Chromium at {CHROME_PATH}, {platform.node()} "
          f"({os.cpu_count()} CPUs), {time.strftime('%Y-%m-%d')}")
    print("\n| Page | Mode | Performance | Accessibility | Best practices | SEO |\n|---|---|---|---|---|---|")
    for name, preset, scores, _ in rows:
        print(f"| {name} | {preset} | " + " | ".join(str(scores[c]) for c in CATEGORIES) + " |")
    return 0


def _version() -> str:
    with open(os.path.join(HERE, "node_modules", "lighthouse", "package.json"), encoding="utf-8") as handle:
        return json.load(handle)["version"]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
