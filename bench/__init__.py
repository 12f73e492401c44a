"""Benchmarks of the deployment targets (``make bench`` runs ``python -m bench``); never part of ``make test``.

* `bench.lambda_cold`: Lambda cold start and package size against a minimal
  Flask app packaged the same way and a bare boto3 handler;
* `bench.throughput`: requests/s and latency under gunicorn + Redis against
  a Flask app doing one Redis ``INCR``;
* `bench.report`: the machine, the results table, and the block of docs/benchmarks.md.

Run on their own (``python -m bench.<name>``, not by ``make bench``):
`bench.breakdown` (the service, two variants of it and the reference:
where a counted view's time goes), `bench.workers` (gevent against
threaded gunicorn workers), `bench.blog_pages` (a cached post page against
``/api/blog``).

Every figure is measured side by side with its reference in the same run,
so the ratios hold on any machine while the absolute numbers do not.
"""
