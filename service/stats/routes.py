"""The owner's stats over HTTP: the ``/stats`` page (login, logout, CSV) and ``/api/stats`` (JSON, CSV)."""

from __future__ import annotations

import csv
import io
import os
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, jsonify, redirect, request, send_file

from ..core.config import project_path
from ..core.deps import current
from ..core.errors import NotFound, RateLimited, Unauthorized
from ..core.security import require_same_site_post

page = Blueprint("stats", __name__, url_prefix="/stats")
api = Blueprint("stats_api", __name__)

_TITLES = {"pages": "Top pages", "referrers": "Referrers", "sources": "Sources (utm_source)",
           "mediums": "Mediums (utm_medium)", "campaigns": "Campaigns (utm_campaign)", "browsers": "Browsers",
           "devices": "Devices", "systems": "Operating systems", "screens": "Screen sizes", "countries": "Countries"}
_PAGE_TITLES = {"referrers": "Referrers", "campaigns": "Campaigns", "countries": "Countries", "events": "Events"}


def _report(extra: tuple[str, ...] = (), owner: bool = False) -> dict:
    """The report the request asks for (400 for unknown or repeated parameters); public and long ones come
    cached (`report.report`). Unless ``owner`` asks, building one takes a slot of the readers' site-wide
    budget (`report.READER_BUILDS`; 429 when it is spent)."""
    from ..core.ratelimit import enforce
    from . import access, report
    config, deps = current_app.config, current()
    zone = config["STATS_TIMEZONE"]
    span, chosen = report.parse_args(request.args.to_dict(flat=False), report.today(deps.now(), zone),
                                     config["STATS_RETENTION_DAYS"], extra, zone)

    def budget() -> None:
        enforce(deps.storage, report.READER_BUILDS, "stats-reader-builds", "all", deps.now(),
                "the stats are busy; try again in a minute")
    return report.report(deps.storage, span, chosen, access.public(), None if owner else budget)


#: Characters that make a spreadsheet read a cell as a formula (a leading tab or CR is stripped first by some).
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: str) -> str:
    """``value`` safe in a spreadsheet: one starting with a formula character gets a leading ``'``."""
    return "'" + value if value.startswith(_FORMULA) else value


def _flat(row: dict) -> dict:
    """A row with its nested numbers (reading's ``scroll``: depth -> share) as columns of their own."""
    nested = {f"{name}_{key}": value for name, inner in row.items() if isinstance(inner, dict) and name != "comparison"
              for key, value in inner.items()}
    return {**{name: value for name, value in row.items() if name == "comparison" or not isinstance(value, dict)},
            **nested}


def _csv(data: dict, table: str) -> Response:
    """One table as CSV: each row's value and numbers and, with the comparison, each number's previous value
    and change."""
    from . import access, detail
    tables = {**data["tables"], **{name: [_flat(row) for row in data[name]] for name in detail.TABLES}}
    if table not in tables:
        raise NotFound(f"table must be one of {', '.join(tables)}", code="unknown_table")
    rows = tables[table]
    fields = [name for name in (rows[0] if rows else dict.fromkeys(detail.COLUMNS.get(table, ("count",))))
              if name not in ("value", "comparison")]
    names = [data["counts"].get(table, name) if name == "count" else name for name in fields]
    compared = data["comparison"] is not None
    compared_fields = set(rows[0].get("comparison") or {}) if rows else set(detail.COMPARED.get(table, ("count",)))
    header = ["value", *names]
    if compared:
        header += [f"{word} {name}" for field, name in zip(fields, names, strict=True) if field in compared_fields
                   for word in ("previous", "change")]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        line = [csv_cell(row["value"]), *(row[field] for field in fields)]
        if compared:
            line += [row["comparison"][field][part] for field in fields if field in compared_fields
                     for part in ("previous", "delta")]
        writer.writerow(line)
    response = Response(out.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = (f'attachment; filename="stats-{table}-{data["from"]}-'
                                               f'{data["to"]}.csv"')
    return access.cache_control(response)


# -- /api/stats ------------------------------------------------------------------------------------

@api.get("/stats")
def api_stats():
    from . import access
    access.require_api()
    return access.cache_control(jsonify(_report(owner=not access.public())))


@api.get("/stats.csv")
def api_stats_csv():
    from . import access
    access.require_api()
    return _csv(_report(extra=("table",), owner=not access.public()), request.args.get("table", "pages"))


# -- /stats -------------------------------------------------------------------------------------------

def _login_page(status: int, message: str = "") -> Response:
    from ..theme.render import render_page
    from . import exclusion
    html = render_page("stats/login.html", message=message, excluded=exclusion.owner_flag(request.cookies))
    response = Response(html, status=status, mimetype="text/html")
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


def _link(data: dict, base: str = "/stats", **changes) -> str:
    """The address of this view (under ``base``: ``/stats`` or a share link) with ``changes`` (None removes a
    parameter)."""
    args = {"range": data["range"]} if data["range"] != "custom" else {"from": data["from"], "to": data["to"]}
    if data["filter"]:
        args.update(dimension=data["filter"]["dimension"], value=data["filter"]["value"])
    if data["comparison"] is None:
        args["compare"] = "none"
    args.update(changes)
    query = urlencode({k: v for k, v in args.items() if v is not None})
    return f"{base}?{query}" if query else base


def _render(base: str = "/stats", shared: bool = False, new_link: str | None = None) -> Response:
    """The stats page for the request's range and its comparison: the owner's (or the public one) under ``/stats``, or a
    read-only shared one under its link (no switch, no sign-out, no share links, no CSV)."""
    from ..theme.render import render_page
    from . import access, chart, display, exclusion, report, sharing
    owner = not shared and access.owner_cookie_valid()
    data = _report(owner=owner)
    retention = current_app.config["STATS_RETENTION_DAYS"]
    presets = {name: days for name, days in report.PRESETS.items() if days <= retention}
    html = render_page("stats/page.html", data=data, chart=chart.svg(data["series"], data["interval"]),
                       titles=_TITLES, page_titles=_PAGE_TITLES, presets=presets,
                       link=lambda **changes: _link(data, base, **changes),
                       base=base, public=access.public(), shared=shared, max_days=retention,
                       short=display.short, spoken=display.spoken, direction=display.direction,
                       excluded=exclusion.owner_flag(request.cookies),
                       shares=[link.public() for link in sharing.links(current().storage)] if owner else None,
                       new_link=new_link, max_links=sharing.MAX_LINKS)
    response = Response(html, mimetype="text/html")
    if shared or new_link:
        response.headers["Cache-Control"] = "private, no-store"
        return response
    return access.cache_control(response)


@page.get("")
def stats_page():
    refused = _page_access()
    if refused is not None:
        return refused
    return _render()


@page.get("/share/<secret>")
def shared_page(secret: str):
    """A read-only view for whoever holds a share link; 404 once it is revoked."""
    from . import access
    access.check_share(secret[:100])
    return _render(base=f"/stats/share/{secret}", shared=True)


@page.get("/<table>.csv")
def stats_csv(table: str):
    from . import access
    refused = _page_access()
    if refused is not None:
        return refused
    return _csv(_report(owner=access.owner_cookie_valid()), table)


@page.post("/login")
def login():
    from . import access, exclusion
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
    exclusion.set_flag(response, True)  # a browser that signed in is the owner's: not counted from now on
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


@page.post("/counting")
def counting_switch():
    """The switch "Don't count this browser" / "Count this browser again": sets or clears the owner's flag
    (`exclusion`) on the browser that posts, signed in or not (it changes nothing but that browser)."""
    from . import access, exclusion
    if not access.enabled():
        raise NotFound("stats are not served: set STATS_TOKEN or STATS_PUBLIC", code="stats_disabled")
    require_same_site_post()
    response = redirect("/stats", code=303)
    exclusion.set_flag(response, request.form.get("count") != "yes")
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _require_owner() -> None:
    """Only the signed-in owner (not STATS_PUBLIC's readers, not a share link) changes share links."""
    from . import access
    if not current_app.config["STATS_TOKEN"]:
        raise NotFound("share links need STATS_TOKEN (the owner's sign-in)", code="stats_disabled")
    require_same_site_post()
    if not access.owner_cookie_valid():
        raise Unauthorized("sign in on /stats first")


@page.post("/shares")
def create_share():
    from . import sharing
    _require_owner()
    _, secret = sharing.create(current().storage, current().now(), request.form.get("label", "")[:1000])
    return _render(new_link=sharing.url(current_app.config["SITE_URL"], secret))


@page.post("/shares/<link_id>/revoke")
def revoke_share(link_id: str):
    from . import sharing
    _require_owner()
    sharing.revoke(current().storage, link_id)
    response = redirect("/stats#share-links", code=303)
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
