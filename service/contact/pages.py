"""The contact form posted without JavaScript: answers a browser can show instead of JSON.

A post is a plain form post when its body is a form (urlencoded or multipart) and its ``Accept``
does not name ``application/json``; JSON clients (the site's script, API users) see no change.
Such a post, once accepted, gets a 303 to ``/contact/thanks.html`` (a static page of the build);
when refused, the form again as an HTML page with the refusal's status, each field's message in
place and the visitor's input kept (never the honeypot). The origin guard of `service.core.security`
runs before either, as for every POST to the API.
"""

from __future__ import annotations

from typing import Any

from flask import Response, redirect, request

from ..core.errors import ServiceError, status_of

THANKS = "/contact/thanks.html"
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
_KEPT = ("name", "email", "subject", "message")


def is_plain_form_post() -> bool:
    """Whether this request is a form a browser sent by itself (see the module docstring)."""
    if request.mimetype not in _FORMS:
        return False
    return not any(kind == "application/json" and quality > 0 for kind, quality in request.accept_mimetypes)


def thanks() -> Response:
    response = redirect(THANKS, code=303)
    response.headers["Cache-Control"] = "no-store"
    return response


def form_again(exc: ServiceError) -> Response:
    """The form as an HTML page for a refused post, with ``exc``'s status and messages."""
    from ..theme.render import render

    values = {name: request.form.get(name, "") for name in _KEPT}
    fields: dict[str, Any] = exc.details.get("fields") if isinstance(exc.details.get("fields"), dict) else {}
    errors = {name: str(problem)[:1].upper() + str(problem)[1:] for name, problem in fields.items()
              if name in _KEPT}
    status = "Please correct the marked fields." if errors else exc.message[:1].upper() + exc.message[1:] + "."
    html = render("contact/form.html", page={"canonical": None, "counted": None},
                   form={"kept": values, "errors": errors, "status": status})
    response = Response(html, status=status_of(exc), mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    if exc.retry_after is not None:
        response.headers["Retry-After"] = str(exc.retry_after)
    return response
