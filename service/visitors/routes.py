"""The visitor counter API: count a view, read counts, daily series, README badge."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from ..core.deps import current
from ..core.errors import Invalid
from ..core.http import query_int
from ..stats import counting as stats
from . import counter as visitors
from .privacy import is_bot, opted_out

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
    path = visitors.normalise_path(body["path"])
    view = visitors.view_id(body.get("view_id"))
    user_agent = request.headers.get("User-Agent", "")
    deps = current()
    config = deps.settings
    found = stats.details(body, request.headers, stats.own_hosts(config["SITE_URL"], request.host))
    if is_bot(user_agent) or stats.is_spam(found.referrer):
        return _no_store(jsonify(visitors.read(deps, path)))
    visit = visitors.Visit(ip=request.remote_addr or "", user_agent=user_agent, opted_out=opted_out(request.headers))
    answer = visitors.count(deps, path, visit, found, at=deps.now(), view=view)
    return _no_store(jsonify(answer))


@bp.get("/visitors")
def read_counts():
    path = visitors.normalise_path(request.args.get("path", "/"))
    return _no_store(jsonify(visitors.read(current(), path)))


@bp.get("/visitors/daily")
def daily():
    days = query_int("days", 30, 1, visitors.MAX_DAYS)
    response = jsonify(visitors.daily(current(), days))
    response.headers["Cache-Control"] = "public, max-age=60"
    return response


@bp.get("/visitors/badge.svg")
def badge():
    path = visitors.normalise_path(request.args.get("path", "/"))
    views = visitors.read(current(), path)["page_views"]
    svg = visitors.badge_svg("views", f"{views:,}")
    return Response(svg, mimetype="image/svg+xml", headers={"Cache-Control": "public, max-age=300"})
