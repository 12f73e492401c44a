"""GET /api/blog (``?q=``: search, best first), /api/blog/<number>, /api/blog/feed.xml: posts written as GitHub
issues (see `service.blog.posts`)."""

from __future__ import annotations

from flask import Blueprint, Response, request

from ..core import http
from ..core.deps import current

bp = Blueprint("blog", __name__)

MAX_PER_PAGE = 50


@bp.get("/blog")
def posts():
    from . import posts, search
    number = http.query_int("page", 1, 1, 10_000)
    per_page = http.query_int("per_page", 10, 1, MAX_PER_PAGE)
    tag = request.args.get("tag", "").strip()[:100] or None
    query = search.parse(request.args.get("q"))
    deps = current()
    items, result = posts.posts(deps)
    if query is not None:
        items = search.rank(items, query)
    return http.respond(posts.page(deps, items, number=number, per_page=per_page, tag=tag), result)


@bp.get("/blog/<int:number>")
def post(number: int):
    from . import posts
    payload, results = posts.post(current(), number)
    return http.respond(payload, *results)


@bp.get("/blog/feed.xml")
def feed():
    from . import feeds, posts
    deps = current()
    items, result = posts.posts(deps)
    response = Response(posts.feed(deps, items, feeds.contents(deps, items)), mimetype="application/atom+xml")
    response.headers["Cache-Control"] = f"public, max-age={result.max_age}"
    response.add_etag()
    return response.make_conditional(request)
