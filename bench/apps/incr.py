"""Throughput reference: a Flask app whose ``POST /api/visitors`` is one Redis ``INCR``, nothing else.

Run under the same gunicorn settings as the service (``gunicorn --config
gunicorn.conf.py bench.apps.incr:app``); ``REDIS_URL`` names the server.
"""

import os

import redis
from flask import Flask, jsonify

app = Flask(__name__)
store = redis.Redis.from_url(os.environ["REDIS_URL"])


@app.post("/api/visitors")
def count_view():
    return jsonify(page_views=store.incr("bench:views"))
