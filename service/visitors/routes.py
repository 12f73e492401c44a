"""The visitor counter API: count a view, read counts, daily series, README badge."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from ..core.deps import current
from ..core.errors import Invalid
from ..core.http import query_int
from ..core.paths import normalise_path
from ..core.privacy import is_bot, opted_out
from ..stats import counting, exclusion, geo
from . import counter

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
