"""Who may call the app: the CDN's origin secret, CORS for listed origins, same-origin-or-listed POSTs.

* CORS: only origins in ``ALLOWED_ORIGINS`` get CORS headers, preflights
  included (Flask answers OPTIONS itself); with the setting empty, no CORS
  headers at all. A dozen lines here rather than flask-cors: its per-request
  hook cost about 80 us, an eighth of a counted view (measured with
  ``bench``), for an exact-match origin list that needs none of its options.
* A browser POST to ``/api`` (and to ``/stats`` sign-in and sign-out) whose
  ``Origin`` is neither the site's own origin (``SITE_URL``'s, or the host
  the request was sent to) nor listed in ``ALLOWED_ORIGINS`` is refused with
  403, also when that setting is empty: other sites' pages cannot spend the
  contact form's limits with their visitors' browsers, nor sign the owner
  out. Without ``Origin``, ``Sec-Fetch-Site: cross-site`` is refused the
  same way; a request with neither (curl, a server) is not a browser's
  cross-site POST and passes (`require_same_site_post`).
* With ``ORIGIN_SECRET`` set, the app answers only requests carrying it in
  ``X-Origin-Verify`` (CloudFront adds it; so does the compose file's Caddy),
  every route alike: the API, the health check, the blog's pages, feeds and
  sitemap, ``/stats``, the built site, even a path that does not exist. The
  Lambda function URL is public, and a page fetched from it directly would
  skip the CDN's cache and the WAF's per-address limit. A refusal is the
  JSON 403 ``forbidden``, decided before routing, so it costs no page
  rendering and no upstream call. During a rotation
  ``ORIGIN_SECRET_PREVIOUS`` is accepted too; the header is compared with
  every accepted secret in constant time, so neither the match nor which
  one matched shows in timing.
* Every response carries the baseline security headers: pages and assets the site's strict
  Content-Security-Policy, which a feature may widen only for a third party's script or frame origin
  (`content_security_policy`), JSON answers one that loads nothing.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from flask import Flask, current_app, request

from .errors import Forbidden, service_error_response

CDN_ONLY = "requests must come through the site's CDN"

#: The site's own policy, directive by directive: every script, style, font and frame from the site, images
#: from any HTTPS host too (album covers, avatars). `content_security_policy` adds what features ask for.
SITE_POLICY = (
    ("default-src", ("'self'",)),
    ("script-src", ("'self'",)),
    ("style-src", ("'self'",)),
    ("img-src", ("'self'", "https:", "data:")),
    ("connect-src", ("'self'",)),
    ("font-src", ("'self'",)),
    ("object-src", ("'none'",)),
    ("base-uri", ("'self'",)),
    ("form-action", ("'self'",)),
    ("frame-ancestors", ("'none'",)),
)
#: Directives a feature may widen (with the origins of a third party's script or frame it embeds).
WIDENABLE = ("script-src", "frame-src")


def content_security_policy(extra: Mapping[str, Iterable[str]] | None = None) -> str:
    """The site's policy, with ``extra`` ``{directive: sources}`` added to `WIDENABLE` directives.

    Without ``extra`` the policy is `SITE_POLICY` as it always was. A directive the site does not name
    (``frame-src``: frames fall back to ``default-src 'self'``) is written with the extra sources alone, just
    after ``font-src``, so frames from the site itself stay refused as before nothing was added. Raises
    ValueError for another directive, or for a source that is not an ``https://`` origin.
    """
    extra = {name: tuple(dict.fromkeys(sources)) for name, sources in (extra or {}).items() if sources}
    for name, sources in extra.items():
        if name not in WIDENABLE:
            raise ValueError(f"{name} may not be widened (only {', '.join(WIDENABLE)})")
        for source in sources:
            parts = urlsplit(source)
            if parts.scheme != "https" or not parts.hostname or parts.path or parts.query or parts.fragment:
                raise ValueError(f"{source!r} is not an https:// origin")
    directives = []
    for name, sources in SITE_POLICY:
        directives.append(" ".join((name, *sources, *extra.pop(name, ()))))
        if name == "font-src":
            directives += [" ".join((added, *extra.pop(added))) for added in WIDENABLE if added in extra]
    return "; ".join(directives)


def site_headers(extra: Mapping[str, Iterable[str]] | None = None) -> list[tuple[str, str]]:
    """Headers for pages and assets: the site's policy (`content_security_policy` with ``extra``) and the
    other browser protections."""
    return [
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "strict-origin-when-cross-origin"),
        ("X-Frame-Options", "DENY"),
        ("Content-Security-Policy", content_security_policy(extra)),
        ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()"),
    ]


#: Headers for pages and assets when no feature widens the policy.
SITE_HEADERS = site_headers()
#: Headers for JSON answers: nothing in them may load or frame anything.
API_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _is_api(path: str) -> bool:
    return path.startswith("/api/") or path == "/api"


#: CORS answers for a listed origin (preflights get the ``PREFLIGHT`` headers too).
CORS_HEADERS = [("Access-Control-Expose-Headers", "Retry-After, X-Request-Id")]
PREFLIGHT = [
    ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
    ("Access-Control-Allow-Headers", "Content-Type, X-Request-Id"),
    ("Access-Control-Max-Age", "600"),
]


def carries_secret(sent: str, accepted: tuple[bytes, ...]) -> bool:
    """Whether ``sent`` equals one of ``accepted``, compared with each of them in constant time (no early exit)."""
    matched = False
    for secret in accepted:
        matched |= hmac.compare_digest(sent.encode(), secret)
    return matched


def from_cdn() -> bool:
    """Whether the request carries the CDN's origin secret (``ORIGIN_SECRET``, or ``ORIGIN_SECRET_PREVIOUS``
    during a rotation) in ``X-Origin-Verify``; always true when neither is set."""
    accepted = current_app.extensions["vitae.origin_secrets"]
    return not accepted or carries_secret(request.headers.get("X-Origin-Verify", ""), accepted)


def require_same_site_post() -> None:
    """Raise `Forbidden` (``origin_not_allowed``) for a browser's POST (any method but GET, HEAD, OPTIONS)
    from another site: an ``Origin`` that is neither the site's own (``SITE_URL``'s, or the host the request
    was sent to) nor listed in ``ALLOWED_ORIGINS`` (``null`` included), or, without ``Origin``,
    ``Sec-Fetch-Site: cross-site``. A request with neither header (curl, a server) passes. The API checks
    every request; ``/stats`` sign-in and sign-out call it too."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    allowed, site_origin = current_app.extensions["vitae.post_origins"]
    origin = request.headers.get("Origin")
    if origin:
        origin = origin.rstrip("/")
        if origin in allowed or origin == site_origin or origin == f"{request.scheme}://{request.host}":
            return
    elif request.headers.get("Sec-Fetch-Site", "").strip().lower() != "cross-site":
        return
    raise Forbidden("another site may not post here", code="origin_not_allowed")


def init_app(app: Flask, csp_sources: Mapping[str, Iterable[str]] | None = None) -> None:
    """Guard every request and add the security headers; ``csp_sources`` widens the site's policy (see
    `content_security_policy`, which raises ValueError for what it may not hold)."""
    allowed = frozenset(app.config["ALLOWED_ORIGINS"])
    site_origin = _origin(app.config["SITE_URL"])
    app.extensions["vitae.origin_secrets"] = tuple(
        value.encode() for value in (app.config["ORIGIN_SECRET"], app.config["ORIGIN_SECRET_PREVIOUS"]) if value)
    app.extensions["vitae.post_origins"] = (allowed, site_origin)

    @app.before_request
    def guard():
        if not from_cdn():
            # answered, not raised: a blueprint's own error handler (the blog's HTML pages) would render it
            return service_error_response(Forbidden(CDN_ONLY))
        if not _is_api(request.path):
            return
        require_same_site_post()

    app.wsgi_app = ResponseHeaders(app.wsgi_app, allowed, site_headers(csp_sources))


class ResponseHeaders:
    """WSGI middleware adding the security headers, and CORS headers for listed origins, to every answer.

    Working on the plain header list keeps this off the per-request cost of
    Flask hooks and werkzeug's validating Headers (measured with ``bench``).
    """

    def __init__(self, app, allowed: frozenset[str], site: list[tuple[str, str]] | None = None):
        self.app = app
        self.allowed = allowed
        self.site = site or SITE_HEADERS

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        site = self.site
        if not _is_api(path):
            extra = site
        elif not self.allowed:
            extra = API_HEADERS
        else:
            extra = [*API_HEADERS, ("Vary", "Origin")]
            origin = environ.get("HTTP_ORIGIN")
            if origin in self.allowed:
                extra += [("Access-Control-Allow-Origin", origin), *CORS_HEADERS]
                if environ.get("REQUEST_METHOD") == "OPTIONS" and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ:
                    extra += PREFLIGHT

        def start(status, headers, exc_info=None):
            # a page answering a POST under /api (the contact form sent without JavaScript) loads the
            # stylesheet; Flask's own OPTIONS answers are text/html too, and keep the API's headers
            html = extra is not site and environ.get("REQUEST_METHOD") == "POST" and any(
                name.lower() == "content-type" and value.startswith("text/html") for name, value in headers)
            headers.extend(site if html else extra)
            return start_response(status, headers, exc_info)
        return self.app(environ, start)
