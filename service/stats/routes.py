"""The owner's stats over HTTP: the ``/stats`` page (login, logout, CSV) and ``/api/stats`` (JSON, CSV)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, jsonify, redirect, request, send_file

from ..core.config import project_path
from ..core.deps import current
from ..core.errors import NotFound, RateLimited, Unauthorized
from ..core.security import require_same_site_post
from .counting import DIMENSIONS

page = Blueprint("stats", __name__, url_prefix="/stats")
api = Blueprint("stats_api", __name__)

_TITLES = {"pages": "Top pages", "referrers": "Referrers", "sources": "Sources (utm_source)",
           "mediums": "Mediums (utm_medium)", "campaigns": "Campaigns (utm_campaign)", "browsers": "Browsers",
           "devices": "Devices", "countries": "Countries"}


def _report(extra: tuple[str, ...] = ()) -> dict:
    """The report the request asks for (400 for unknown or repeated parameters); public ones come cached."""
    from . import access, report
    config = current_app.config
    today = dt.datetime.fromtimestamp(current().now(), dt.UTC).date()
    span, chosen = report.parse_args(request.args.to_dict(flat=False), today, config["STATS_RETENTION_DAYS"], extra)
    if access.public():
        return report.cached(current().storage, span, chosen)
    return report.build(current().storage, span, chosen)


def _csv(data: dict, table: str) -> Response:
    from . import access
    if table not in DIMENSIONS:
        raise NotFound(f"table must be one of {', '.join(DIMENSIONS)}", code="unknown_table")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["value", data["counts"][table]])
    for row in data["tables"][table]:
        # a leading = + - @ would be a formula in a spreadsheet
        value = row["value"]
        writer.writerow(["'" + value if value[:1] in ("=", "+", "-", "@") else value, row["count"]])
    response = Response(out.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = (f'attachment; filename="stats-{table}-{data["from"]}-'
                                               f'{data["to"]}.csv"')
    return access.cache_control(response)


# -- /api/stats ------------------------------------------------------------------------------------

@api.get("/stats")
def api_stats():
    from . import access
    access.require_api()
    return access.cache_control(jsonify(_report()))


@api.get("/stats.csv")
def api_stats_csv():
    from . import access
    access.require_api()
    return _csv(_report(extra=("table",)), request.args.get("table", "pages"))


# -- /stats -------------------------------------------------------------------------------------------

def _login_page(status: int, message: str = "") -> Response:
    from ..theme.render import render_page
    response = Response(render_page("stats/login.html", message=message), status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _page_access() -> Response | None:
    """None when the page may be shown, else the answer to give instead."""
    from . import access
    if not access.enabled():
        raise NotFound("stats are not served: set STATS_TOKEN or STATS_PUBLIC", code="stats_disabled")
    if access.public() or access.owner_cookie_valid():
        return None
    return _login_page(401)


def _link(data: dict, **changes) -> str:
    """The /stats address of this view with ``changes`` (None removes a parameter)."""
    args = {"range": data["range"]} if data["range"] != "custom" else {"from": data["from"], "to": data["to"]}
    if data["filter"]:
        args.update(dimension=data["filter"]["dimension"], value=data["filter"]["value"])
    args.update(changes)
    query = urlencode({k: v for k, v in args.items() if v is not None})
    return f"/stats?{query}" if query else "/stats"


@page.get("")
def stats_page():
    from ..theme.render import render_page
    from . import access, chart, report
    refused = _page_access()
    if refused is not None:
        return refused
    data = _report()
    html = render_page("stats/page.html", data=data, chart=chart.svg(data["daily"]), titles=_TITLES,
                       presets=report.PRESETS, link=lambda **changes: _link(data, **changes),
                       public=access.public(), max_days=report.MAX_DAYS)
    return access.cache_control(Response(html, mimetype="text/html"))


@page.get("/<table>.csv")
def stats_csv(table: str):
    refused = _page_access()
    if refused is not None:
        return refused
    return _csv(_report(), table)


@page.post("/login")
def login():
    from . import access
    if not current_app.config["STATS_TOKEN"]:
        raise NotFound("stats are not served: set STATS_TOKEN", code="stats_disabled")
    require_same_site_post()
    given = request.form.get("token", "")
    try:
        access.check_token(given[:1000])
    except Unauthorized:
        return _login_page(401, "Wrong password.")
    except RateLimited as exc:
        response = _login_page(429, "Too many wrong passwords; try again later.")
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    response = redirect("/stats", code=303)
    access.set_owner_cookie(response)
    response.headers["Cache-Control"] = "private, no-store"
    return response


@page.post("/logout")
def logout():
    from . import access
    require_same_site_post()
    response = redirect("/stats", code=303)
    access.end_session(response)
    response.headers["Cache-Control"] = "private, no-store"
    return response


@page.get("/site.css")
def stylesheet():
    """The site's own stylesheet (the built, fingerprinted one when there is a build; else its source; else
    an empty one)."""
    built = os.path.join(project_path(current_app.config["SITE_DIR"]), "assets")
    names = sorted(n for n in os.listdir(built) if n.startswith("site.") and n.endswith(".css")) \
        if os.path.isdir(built) else []
    path = os.path.join(built, names[-1]) if names else project_path(os.path.join("site", "assets", "site.css"))
    if not os.path.isfile(path):  # on Lambda the site lives in S3: stats.css carries the page alone
        return Response("/* the site's stylesheet is not on this host */\n", mimetype="text/css",
                        headers={"Cache-Control": "public, max-age=300"})
    return send_file(path, mimetype="text/css", max_age=300)


@page.get("/stats.css")
def own_stylesheet():
    return send_file(os.path.join(os.path.dirname(__file__), "stats.css"), mimetype="text/css", max_age=300)
