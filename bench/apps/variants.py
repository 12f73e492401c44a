"""The service as shipped with one part of a counted view swapped for the reference's one ``INCR`` (`bench.breakdown`).

``BENCH_VARIANT`` picks the part:

* ``shell``: ``POST /api/visitors`` answers as `bench.apps.incr` does (one
  ``INCR`` through the app's storage, ``jsonify``), inside the service's app
  with every middleware, hook, header and log line it has: what the shell
  every endpoint shares costs;
* ``no-storage-step``: the real view, but the storage's ``hit`` (the one
  ``EVALSHA``: rate limit, counters, visitor marker, tallies, read-back) is
  one ``INCR``: what the view's own request handling costs.

Served by the same gunicorn config as the service (``bench.apps.variants:app``).
"""

import os

from flask import jsonify

from service import create_app
from service.storage import HitResult

app = create_app()
_storage = app.extensions["vitae.storage"]
_variant = os.environ["BENCH_VARIANT"]

if _variant == "shell":
    def _incr_view():
        return jsonify(page_views=_storage.incr("bench:views"))

    app.view_functions["visitors.count_view"] = _incr_view
elif _variant == "no-storage-step":
    def _one_incr(hit):
        views = _storage.incr("bench:views")
        return HitResult(True, False, dict.fromkeys(hit.read, views))

    _storage.hit = _one_incr
else:
    raise SystemExit(f"BENCH_VARIANT must be shell or no-storage-step, not {_variant!r}")
