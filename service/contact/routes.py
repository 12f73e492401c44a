"""POST /api/contact: accept a visitor's message into the outbox.

Answers ``202 {"status": "accepted", "id"}`` (its first delivery record) only once the message is stored
for every channel it is routed to; a form a
browser posts without JavaScript gets HTML instead (see `service.contact.pages`).
Errors: 415 (neither JSON nor a form), 400 ``invalid_json`` / ``invalid_body``,
400 ``invalid`` with ``fields`` (see `form.validate`), 400
``turnstile_missing`` (``TURNSTILE_SECRET`` is set and no token came: the widget did not run, e.g.
without JavaScript), 400 ``turnstile_failed``, 413 (body over ``MAX_BODY_BYTES``), 429 with
``Retry-After`` (per-address or global limit), 503 when storage does not
answer (nothing was accepted). A filled honeypot gets the same 202 and the
message is dropped.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, jsonify, request

from ..core.clock import utc_date
from ..core.deps import Deps, current
from ..core.errors import Invalid, ServiceError, UnsupportedMediaType
from ..core.paths import normalise_path
from ..core.privacy import subject_hash
from ..core.ratelimit import enforce
from ..storage.base import new_id

log = logging.getLogger(__name__)

bp = Blueprint("contact", __name__)

_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def _submitted() -> dict[str, Any]:
    """The submitted fields; a form field sent twice becomes a list (and fails validation)."""
    if request.mimetype == "application/json":
        try:
            data = json.loads(request.get_data(cache=True))
        except (ValueError, RecursionError):
            raise Invalid("the body is not valid JSON", code="invalid_json") from None
        if not isinstance(data, dict):
            raise Invalid('expected a JSON object like {"name": ..., "email": ..., '
                                                '"message": ...}', code="invalid_body")
        return data
    if request.mimetype in _FORMS:
        return {key: values[0] if len(values) == 1 else values for key, values in request.form.lists()}
    raise UnsupportedMediaType("send application/json or a form (x-www-form-urlencoded)")


def _page(data: dict[str, Any]) -> str:
    """The page the form was sent from: the ``page`` field, else the Referer's path; '' if neither is usable."""
    try:
        referrer_path = urlsplit(request.referrer or "").path or None
    except ValueError:  # a malformed Referer is just not usable
        referrer_path = None
    for candidate in (data.get("page"), referrer_path):
        if isinstance(candidate, str):
            try:
                return normalise_path(candidate)
            except ServiceError:
                continue
    return ""


#: Why a message without a token is refused: the widget never ran (no JavaScript, or its script was blocked).
TURNSTILE_MISSING = ("this form needs Cloudflare's anti-spam check, which runs with JavaScript: allow JavaScript "
                     "and challenges.cloudflare.com for this page, reload it and try again")


def _turnstile(deps: Deps, data: dict[str, Any], ip: str) -> str:
    """``"passed"``, or ``"unchecked"`` when siteverify cannot be asked; `Invalid` without a token
    (``turnstile_missing``, no call made) or on a failed check (``turnstile_failed``)."""
    from ..core.upstream import UpstreamError
    from . import form
    from .turnstile import Turnstile

    token = data.get(form.TURNSTILE_FIELD)
    if token is None or (isinstance(token, str) and not token.strip()):
        raise Invalid(TURNSTILE_MISSING, code="turnstile_missing")
    try:
        passed, codes = deps.client("turnstile", Turnstile.from_settings).verify(
            token.strip() if isinstance(token, str) else "", ip)
    except UpstreamError as exc:
        # Cloudflare being unreachable is not the visitor's fault: keep the message, flagged
        log.warning("Turnstile could not be asked (%s); accepting the message unchecked", exc)
        return "unchecked"
    if not passed:
        raise Invalid("the anti-spam check failed; reload the page and try again", code="turnstile_failed",
                       codes=codes)
    return "passed"


def _accepted(message_id: str):
    response = jsonify({"status": "accepted", "id": message_id})
    response.status_code = 202
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/contact")
def submit():
    from . import pages

    if not pages.is_plain_form_post():
        return _submit()
    try:
        _submit()
    except ServiceError as exc:
        return pages.form_again(exc)
    return pages.thanks()


def _submit():
    from ..outbox import delivery
    from . import form
    data = _submitted()
    deps = current()
    at = deps.now()
    if form.honeypot_filled(data):
        log.info("contact form honeypot filled; message dropped")
        return _accepted(new_id(at))
    message: dict[str, Any] = form.validate(data)
    config = deps.settings
    storage = deps.storage
    ip = request.remote_addr or ""
    # the human check comes first: bots that fail it must not use up the form's global limit
    turnstile = _turnstile(deps, data, ip) if config["TURNSTILE_SECRET"] else None
    enforce(storage, config["CONTACT_RATE_LIMIT"], "contact", subject_hash(config["SECRET_KEY"], utc_date(at), ip),
            at, "too many messages from this address; please try again later")
    enforce(storage, config["CONTACT_GLOBAL_RATE_LIMIT"], "contact-all", "all", at,
            "the contact form takes no more messages for now; please try again later")
    message["page"] = _page(data)
    if turnstile is not None:
        message["turnstile"] = turnstile
    records = delivery.accept(deps, message, at=at)
    delivery.deliver_soon(deps)
    return _accepted(records[0].id)
