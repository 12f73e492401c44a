"""The machine a run was measured on, the results as a Markdown table, and the block of docs/benchmarks.md.

`write_page` replaces only the block between the ``bench:deploy`` markers
in the ``## Benchmarks`` section (adding it at the section's end the first
time), so other rows there, such as the Lighthouse scores, stay as they are.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
from pathlib import Path

BEGIN = "<!-- bench:deploy:begin (written by `make bench`) -->"
END = "<!-- bench:deploy:end -->"
HEADING = "# Benchmarks"


def machine() -> dict[str, str]:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        memory = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())[1]) / 1024 / 1024
    except (OSError, TypeError):
        memory = 0.0
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return {"date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "cpu": cpu,
            "cores": str(os.cpu_count()), "memory": f"{memory:.0f} GB", "python": platform.python_version(),
            "system": f"{platform.system()} {platform.release()}", "load": f"{load:.1f}"}


def _rate(run: dict) -> str:
    return f"{run['rps']:,.0f} req/s, p50 {run['p50_ms']:.1f} ms, p99 {run['p99_ms']:.1f} ms"


def table(results: dict, host: dict[str, str]) -> str:
    """The Markdown block: machine line, one table, notes."""
    lines = [f"Measured {host['date']} on {host['cpu']} ({host['cores']} cores, {host['memory']} RAM), "
             f"Python {host['python']}, {host['system']}; load average {host['load']} at the start. "
             "Each figure sits next to its reference from the same run: compare the ratios, not the absolutes.", "",
             "| Benchmark | Vitae | Reference | Ratio | Target |", "|---|---|---|---|---|"]
    cold = results.get("cold")
    if cold:
        median, runs = cold["median_ms"], cold["runs"]
        lines.append(f"| Lambda cold start, first `POST /api/visitors` (median of {runs}) | {median['vitae']:.0f} ms "
                     f"| (a) minimal Flask + one `UpdateItem`, same Zappa: {median['a']:.0f} ms "
                     f"| {cold['ratio_to_a']:.2f} x (a) | at most 1.10 x (a) |")
        lines.append(f"| | | (b) bare boto3 handler, same `UpdateItem`: {median['b']:.0f} ms "
                     f"| {cold['ratio_to_b']:.2f} x (b) | |")
        size = cold["size"]
        lines.append(f"| Lambda package (zip) | {size['vitae']['zip_mb']:.1f} MB | (a) {size['a']['zip_mb']:.1f} MB "
                     f"| {size['vitae']['zip_mb'] / size['a']['zip_mb']:.2f} x (a) | at most 15 MB |")
        lines.append(f"| Lambda package, unzipped | {size['vitae']['installed_mb']:.1f} MB "
                     f"| (a) {size['a']['installed_mb']:.1f} MB "
                     f"| {size['vitae']['installed_mb'] / size['a']['installed_mb']:.2f} x (a) "
                     "| Lambda's limit: 250 MB |")
    through = results.get("throughput")
    if through:
        settings = through["settings"]
        lines.append(f"| Self-hosted `POST /api/visitors` (median of {settings['rounds']} runs) "
                     f"| {_rate(through['post'])} "
                     f"| one Redis `INCR`, same gunicorn: {_rate(through['post_reference'])} "
                     f"| {through['ratio_post']:.2f} x | at least 0.8 x |")
        lines.append(f"| Self-hosted `GET /api/visitors` | {_rate(through['get_visitors'])} | | | |")
        lines.append(f"| Self-hosted `GET /api/github` (cached) | {_rate(through['get_github'])} | | | |")
    fixed = results.get("fixed_rate")
    if fixed:
        lines.append(f"| Self-hosted `POST /api/visitors` at a fixed {fixed['rate']:.0f} requests/s for "
                     f"{fixed['duration_s']:.0f} s, beside {fixed['idle_connections']} idle keep-alive and "
                     f"{fixed['slow_clients']} slow connections | p50 {fixed['p50_ms']:.1f} ms, p99 "
                     f"{fixed['p99_ms']:.1f} ms, max {fixed['max_ms']:.0f} ms; "
                     f"{fixed['non_2xx'] + fixed['failed']} errors | | | p99 at most 20 ms, 0 errors |")
    lines.append("")
    if cold:
        lines.append(f"Cold start: a fresh interpreter (bytecode writing off, only the package and the libraries "
                     f"Lambda's runtime provides on its path) answers its first event against DynamoDB served by "
                     f"moto over HTTP on loopback, so network time is near zero and import and set-up time "
                     f"dominate; minima {cold['min_ms']['vitae']:.0f} / {cold['min_ms']['a']:.0f} / "
                     f"{cold['min_ms']['b']:.0f} ms. (a) is packaged with the production stage's settings "
                     "(exclusions, hash-based bytecode) and enters through the same precompiled "
                     "`zappa.handler`. MB are 10^6 bytes.")
    if through:
        settings = through["settings"]
        lines.append(f"Throughput: wrk {settings['threads']} threads, {settings['connections']} connections, "
                     f"{settings['duration']} s per run on the same machine as gunicorn ({settings['workers']} "
                     f"gevent workers, gunicorn.conf.py) and Redis; each request "
                     f"comes from one of 20,000 visitor addresses with a CORS origin, so the rate limit, unique "
                     f"visitor marker, CORS and JSON access log all do their work "
                     f"({through['post']['non_2xx']} non-2xx answers); connections are reopened every 50 requests "
                     "so both gunicorn workers get their share.")
    if fixed:
        lines.append("Fixed rate (`bench/fixed_rate.py`): open-loop, each request timed from when it was due (a stall "
                     "shows, it does not slow the sender), 64 keep-alive connections from one asyncio client on the "
                     "same two cores; the idle connections made one request each and say nothing, the slow ones "
                     "send headers a byte a second, both reopened when the server closes them.")
    return "\n".join(lines)


def write_page(page: Path, block: str) -> None:
    """Put ``block`` between the markers of the benchmarks page, leaving the rest untouched."""
    text = page.read_text(encoding="utf-8")
    wrapped = f"{BEGIN}\n{block}\n{END}"
    if BEGIN in text and END in text:
        start, end = text.index(BEGIN), text.index(END) + len(END)
        text = text[:start] + wrapped + text[end:]
    else:  # first run: at the end of the section, after whatever it already holds
        match = re.search(rf"^{re.escape(HEADING)}\s*$", text, re.M)
        if not match:
            raise RuntimeError(f"{page} has no '{HEADING}' section")
        following = re.search(r"^## ", text[match.end():], re.M)
        end = match.end() + following.start() if following else len(text)
        section = text[:end].rstrip("\n")
        text = f"{section}\n\n{wrapped}\n" + (f"\n{text[end:]}" if following else "")
    page.write_text(text, encoding="utf-8")
