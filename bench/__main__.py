"""``python -m bench``: run the deployment benchmarks, print the table, write it into docs/benchmarks.md.

    python -m bench [--only cold,throughput,fixed] [--runs 11] [--duration 10] [--rounds 3] [--no-write]

Results also go to bench/results/deploy.json (kept out of git).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
from pathlib import Path

from . import fixed_rate, lambda_cold, report, throughput

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="cold,throughput,fixed", help="comma-separated: cold, throughput, fixed")
    parser.add_argument("--runs", type=int, default=11, help="cold starts of each package (at least 9)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating service/reference wrk runs")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md as it is")
    options = parser.parse_args()
    if options.runs < 9:
        parser.error("--runs must be at least 9 (the cold start is a median)")
    wanted = {name.strip() for name in options.only.split(",")}
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto logs every request
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)

    host = report.machine()
    results: dict = {"machine": host}
    with tempfile.TemporaryDirectory(prefix="vitae-bench-") as folder:
        work = Path(folder)
        if "cold" in wanted:
            (work / "cold").mkdir()
            results["cold"] = lambda_cold.measure(work / "cold", runs=options.runs)
        if "throughput" in wanted:
            (work / "throughput").mkdir()
            results["throughput"] = throughput.measure(work / "throughput", duration=options.duration,
                                                       rounds=options.rounds)
        if "fixed" in wanted:
            (work / "fixed").mkdir()
            print("fixed rate: 400 requests/s for 30 s beside idle and slow connections...")
            results["fixed_rate"] = fixed_rate.measure(work / "fixed")
    block = report.table(results, host)
    print()
    print(block)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "deploy.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    if not options.no_write:
        report.write_page(ROOT / "docs" / "benchmarks.md", block)
        print("\nwritten to docs/benchmarks.md and bench/results/deploy.json")


if __name__ == "__main__":
    main()
