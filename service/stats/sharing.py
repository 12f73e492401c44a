"""Read-only share links to the stats: ``/stats/share/<secret>``, created and revoked by the owner.

A link's secret is 32 URL-safe characters (192 random bits). Storage keeps
only its SHA-256, with an id (to revoke it by), a label and the time it was
made, all in one value, `KEY`, with at most `MAX_LINKS` links. A link is
found by the hash of the secret presented, so nothing compares secrets
character by character; an unknown or revoked secret is not found (the
route answers 404, and every attempt takes a slot of the sign-in's rate
limit first). Changes read and rewrite the value under a short lock (the
storage's atomic `add`, expiring after `LOCK_SECONDS`), so two changes at
once cannot lose a link or bring a revoked one back.

A shared view shows what the page shows for any range; it cannot sign in,
create or revoke links, see the owner's switch, or download CSV.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable

from ..core.errors import Invalid, NotFound, Unavailable
from ..storage import Storage

KEY = "stats-shares"
LOCK_KEY = "stats-shares:lock"
LOCK_SECONDS = 10
#: Links the owner may have at once.
MAX_LINKS = 20
MAX_LABEL = 60
PATH = "/stats/share/"
#: What a secret follows in any path redacted from the logs: `PATH`, and its spellings a hand or a tool
#: mangled (``/stats//share/``, ``/stats/./share/``), which answer 404 but hold a live secret all the same.
REDACTED_AFTER = "/share/"
_SECRET = re.compile(r"[A-Za-z0-9_-]{32}")
_ID = re.compile(r"[a-f0-9]{8}")
_LABEL_DROP = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]+")


@dataclasses.dataclass(frozen=True)
class Link:
    """One share link as stored: never its secret."""

    id: str
    label: str
    created: float
    digest: str

    def public(self) -> dict:
        """What the owner is shown of a link (no hash)."""
        made = dt.datetime.fromtimestamp(self.created, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        return {"id": self.id, "label": self.label, "created": made}


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def label(raw: object) -> str:
    """A link's label: text without control or direction characters, at most `MAX_LABEL` characters."""
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise Invalid("label must be text", code="invalid_label")
    return " ".join(_LABEL_DROP.sub(" ", raw).split())[:MAX_LABEL]


def links(storage: Storage) -> list[Link]:
    """Every live link, oldest first (an unreadable value counts as none: no link works)."""
    raw = storage.get(KEY)
    try:
        return [Link(**entry) for entry in json.loads(raw)] if raw else []
    except (ValueError, TypeError):
        return []


def find(storage: Storage, secret: str) -> Link | None:
    """The live link whose secret is ``secret``, or None."""
    if not _SECRET.fullmatch(secret):
        return None
    digest = _digest(secret)
    return next((link for link in links(storage) if link.digest == digest), None)


def _change(storage: Storage, change: Callable[[list[Link]], list[Link]]) -> None:
    """Rewrite the links with ``change`` under the lock; `Unavailable` (503) when it stays taken."""
    token = secrets.token_hex(8)
    for _ in range(50):
        if storage.add(LOCK_KEY, token, ttl=LOCK_SECONDS):
            break
        time.sleep(0.05)
    else:
        raise Unavailable("share links are being changed elsewhere; try again")
    try:
        kept = change(links(storage))
        storage.set(KEY, json.dumps([dataclasses.asdict(link) for link in kept], separators=(",", ":")))
    finally:
        if storage.get(LOCK_KEY) == token:  # expired and taken by another: not ours to remove
            storage.delete(LOCK_KEY)


def create(storage: Storage, now: float, name: str = "") -> tuple[Link, str]:
    """Make a link labelled ``name``; return it and its secret (shown once, never stored). 400 when
    `MAX_LINKS` are live."""
    secret = secrets.token_urlsafe(24)
    link = Link(id=secrets.token_hex(4), label=label(name), created=now, digest=_digest(secret))

    def add(current: list[Link]) -> list[Link]:
        if len(current) >= MAX_LINKS:
            raise Invalid(f"at most {MAX_LINKS} share links: revoke one first", code="too_many_links")
        return [*current, link]
    _change(storage, add)
    return link, secret


def revoke(storage: Storage, link_id: str) -> None:
    """Revoke the link ``link_id`` at once; 404 when there is none."""
    if not _ID.fullmatch(link_id):
        raise NotFound("no share link with that id", code="unknown_link")
    found = []

    def remove(current: list[Link]) -> list[Link]:
        found.extend(link for link in current if link.id == link_id)
        if not found:
            raise NotFound("no share link with that id", code="unknown_link")
        return [link for link in current if link.id != link_id]
    _change(storage, remove)


def url(site_url: str, secret: str) -> str:
    return site_url.rstrip("/") + PATH + secret
