"""The visitor counter API: count a view, read counts, daily series, README badge."""

from __future__ import annotations

import json

from flask import Blueprint, Response, current_app, jsonify, request

from ..core.deps import current
from ..core.errors import Invalid, UnsupportedMediaType, error_response
from ..core.http import query_int
from ..core.paths import normalise_path
from ..core.privacy import is_bot, opted_out
from ..stats import counting, exclusion, geo
from . import beacons, counter

bp = Blueprint("visitors", __name__)


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/visitors")
def count_view():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Invalid('expected a JSON object like {"path": "/blog/12"}', code="invalid_body")
    if "path" not in body:
        raise Invalid('path is required, e.g. {"path": "/"}', code="invalid_path")
    path = normalise_path(body["path"])
    view = counter.view_id(body.get("view_id"))
    user_agent = request.headers.get("User-Agent", "")
    deps = current()
    config = deps.settings
    address = request.remote_addr or ""
    if exclusion.excluded(config["STATS_IGNORE"], path, address, request.cookies):
        return _no_store(jsonify(counter.read(deps, path)))
    country = geo.country(request.headers, address, trusted=geo.behind_trusted_proxy(config),
                          database=config["GEOIP_DATABASE"])
    found = counting.details(body, request.headers, counting.own_hosts(config["SITE_URL"], request.host),
                             country=country)
    if is_bot(user_agent) or counting.is_spam(found.referrer):
        return _no_store(jsonify(counter.read(deps, path)))
    visit = counter.Visit(ip=address, user_agent=user_agent, opted_out=opted_out(request.headers))
    answer = counter.count(deps, path, visit, found, at=deps.now(), view=view)
    return _no_store(jsonify(answer))


@bp.post("/visitors/events")
def record_beacon():
    """A page's events and reading (see `beacons`): 204 when recorded, and also when left out (a bot, a
    visitor who sent DNT or Sec-GPC, the owner's browser, a path or network of ``STATS_IGNORE``: nothing is
    recorded, and the page is not told apart)."""
    kind = (request.mimetype or "").lower()
    if kind not in ("text/plain", "application/json"):
        raise UnsupportedMediaType("send the beacon as JSON (text/plain or application/json)",
                                   code="unsupported_media_type")
    if (request.content_length or 0) > beacons.MAX_BODY:
        return error_response(413, "body_too_large", f"a beacon is at most {beacons.MAX_BODY} bytes")
    raw = request.get_data(cache=False)
    if len(raw) > beacons.MAX_BODY:
        return error_response(413, "body_too_large", f"a beacon is at most {beacons.MAX_BODY} bytes")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        body = None
    if not isinstance(body, dict):
        raise Invalid('expected a JSON object like {"path": "/", "view_id": "…", "events": ["email"]}',
                      code="invalid_body")
    beacon = beacons.parse(body, normalise_path(body.get("path")))
    user_agent, address, deps = request.headers.get("User-Agent", ""), request.remote_addr or "", current()
    if not (is_bot(user_agent) or opted_out(request.headers)
            or exclusion.excluded(deps.settings["STATS_IGNORE"], beacon.path, address, request.cookies)):
        visit = counter.Visit(ip=address, user_agent=user_agent, opted_out=False)
        beacons.send(deps, current_app.extensions["vitae.beacon-limits"], beacon, visit, at=deps.now())
    return _no_store(Response(status=204))


@bp.get("/visitors")
def read_counts():
    path = normalise_path(request.args.get("path", "/"))
    return _no_store(jsonify(counter.read(current(), path)))


@bp.get("/visitors/daily")
def daily():
    days = query_int("days", 30, 1, counter.MAX_DAYS)
    response = jsonify(counter.daily(current(), days))
    response.headers["Cache-Control"] = "public, max-age=60"
    return response


@bp.get("/visitors/badge.svg")
def badge():
    path = normalise_path(request.args.get("path", "/"))
    views = counter.read(current(), path)["page_views"]
    svg = counter.badge_svg("views", f"{views:,}")
    return Response(svg, mimetype="image/svg+xml", headers={"Cache-Control": "public, max-age=300"})
