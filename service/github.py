"""The owner's recent public GitHub activity, and the rate-limited GitHub calls the blog shares.

`call` is the only way to GitHub: it refuses (transient `UpstreamError`)
while the rate limit is spent and, from every answer's
``X-RateLimit-Remaining`` / ``X-RateLimit-Reset``, pauses all GitHub calls
until the reset once it reaches 0. Callers pass the ETag they hold; a 304
reuses their cached body (and costs nothing against the limit).

`activity(limit)` answers from two cached entries (``GITHUB_CACHE_TTL``):
the public events, summarised (push, pull request, issue, release, create,
fork, star), and the most-starred repositories (``GITHUB_TOP_REPOS``).
"""

from __future__ import annotations

import re
from typing import Any

from flask import current_app

from . import cache
from .clock import now as clock_now
from .errors import APIError
from .upstream import UpstreamError
from .upstream import github as client
from .widgets import require, web_url

#: Events kept in the cache (the answer's ``limit`` is at most this).
MAX_EVENTS = 30
MAX_MESSAGES = 3
#: GitHub's rate-limit window: no pause is longer.
MAX_PAUSE = 3600
_KINDS = {"PushEvent": "push", "PullRequestEvent": "pull_request", "IssuesEvent": "issue",
          "ReleaseEvent": "release", "CreateEvent": "create", "ForkEvent": "fork", "WatchEvent": "star"}


def call(path: str, *, params: dict[str, Any] | None = None, etag: str | None = None) -> client.Answer:
    """One GET on the GitHub API with the shared token and rate-limit pause; raises `UpstreamError`."""
    cache.held("github")
    config = current_app.config
    try:
        answer = client.get(config["GITHUB_API_URL"], path, params=params, token=config["GITHUB_TOKEN"] or None,
                            etag=etag, read_timeout=config["UPSTREAM_TIMEOUT"])
    except client.RateLimited as exc:
        now = clock_now()
        until = max(exc.reset or 0, now + (exc.retry_after or 0))
        if until <= now:
            until = now + cache.FAILURE_TTL
        until = min(until, now + MAX_PAUSE)
        cache.hold("github", until)
        _rate_limit_alert(until)
        exc.retry_after = until - now
        raise
    if answer.remaining == 0 and answer.reset:
        now = clock_now()
        if answer.reset > now:
            cache.hold("github", min(answer.reset, now + MAX_PAUSE))
            _rate_limit_alert(min(answer.reset, now + MAX_PAUSE))
    return answer


def _rate_limit_alert(until: float) -> None:
    from .stats.notify import alert

    alert("github_rate_limit", f"GitHub's rate limit is spent until {int(until - clock_now())} s from now"
          + ("" if current_app.config["GITHUB_TOKEN"] else "; a GITHUB_TOKEN raises it to 5,000 requests/h"))


def html_base() -> str:
    """The web address matching ``GITHUB_API_URL`` (github.com, or a GitHub Enterprise host)."""
    api = current_app.config["GITHUB_API_URL"]
    if re.fullmatch(r"https://api\.github\.com/?", api):
        return "https://github.com"
    return re.sub(r"/api/v3/?$", "", api)


def activity(limit: int) -> tuple[dict[str, Any], list[cache.Cached]]:
    """The widget's answer (``limit`` events) and the cache results it came from; 503 `APIError` when down."""
    (username,) = require("GITHUB_USERNAME")
    config = current_app.config
    ttl = config["GITHUB_CACHE_TTL"]
    events = cache.cached(f"github:events:{username.lower()}", ttl, lambda previous: _fetch_events(username, previous))
    results = [events]
    repos: list[dict] = []
    if config["GITHUB_TOP_REPOS"]:
        try:
            top = cache.cached(f"github:repos:{username.lower()}", ttl,
                               lambda previous: _fetch_repos(username, previous))
        except APIError:  # the events still make a widget
            pass
        else:
            repos = top.value[:config["GITHUB_TOP_REPOS"]]
            results.append(top)
    return {"username": username, "events": events.value[:limit], "repos": repos}, results


def _conditional(path: str, params: dict[str, Any], previous: cache.Entry | None) -> client.Answer | None:
    """A conditional GET: the new answer, or None when ``previous`` is still current (304)."""
    etag = previous.state.get("etag") if previous and isinstance(previous.state, dict) else None
    answer = call(path, params=params, etag=etag)
    if answer.status == 304:
        if previous is None:
            raise UpstreamError("GitHub answered 304 to an unconditional request", status=304, transient=True)
        return None
    return answer


def _fetch_events(username: str, previous: cache.Entry | None) -> cache.Entry:
    answer = _conditional(f"/users/{username}/events/public", {"per_page": 100}, previous)
    if answer is None:
        return previous
    if not isinstance(answer.data, list):
        raise UpstreamError("GitHub events answer is not a list", status=200, transient=True)
    base = html_base()
    summaries = [s for s in (summarise(event, base) for event in answer.data) if s][:MAX_EVENTS]
    return cache.Entry(summaries, state={"etag": answer.etag})


def _fetch_repos(username: str, previous: cache.Entry | None) -> cache.Entry:
    answer = _conditional(f"/users/{username}/repos", {"type": "owner", "sort": "pushed", "per_page": 100}, previous)
    if answer is None:
        return previous
    if not isinstance(answer.data, list):
        raise UpstreamError("GitHub repositories answer is not a list", status=200, transient=True)
    repos = [r for r in answer.data if isinstance(r, dict) and not r.get("fork") and not r.get("archived")
             and not r.get("private") and isinstance(r.get("name"), str)]
    repos.sort(key=lambda r: (-_int(r.get("stargazers_count")), r["name"].lower()))
    top = [{"name": r["name"], "description": _text(r.get("description")), "stars": _int(r.get("stargazers_count")),
            "language": _text(r.get("language")), "url": web_url(r.get("html_url"))} for r in repos[:30]]
    return cache.Entry(top, state={"etag": answer.etag})


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _first_line(message: Any) -> str | None:
    return message.strip().splitlines()[0][:200] if isinstance(message, str) and message.strip() else None


def summarise(event: Any, base: str) -> dict[str, Any] | None:
    """One event as the widget shows it, or None for kinds it does not show or malformed events.

    Every summary has ``type``, ``repo``, ``url`` and ``created_at``; the rest
    depends on the type. Payloads GitHub trimmed (a push without its commit
    list, a pull request without its title) give None for what is missing.
    """
    if not isinstance(event, dict) or event.get("type") not in _KINDS:
        return None
    repo = (event.get("repo") or {}).get("name") if isinstance(event.get("repo"), dict) else None
    if not isinstance(repo, str) or not re.fullmatch(r"[\w.-]+/[\w.-]+", repo):
        return None
    payload = event.get("payload") if isinstance(event.get("payload"), dict) else {}
    kind = _KINDS[event["type"]]
    repo_url = f"{base}/{repo}"
    summary: dict[str, Any] = {"type": kind, "repo": repo, "url": repo_url,
                               "created_at": _text(event.get("created_at"))}
    if kind == "push":
        ref = _text(payload.get("ref")) or ""
        commits = payload.get("commits") if isinstance(payload.get("commits"), list) else None
        size = payload.get("size") if isinstance(payload.get("size"), int) else None
        head = _text(payload.get("head"))
        messages = [m for m in (_first_line(c.get("message")) for c in commits or [] if isinstance(c, dict)) if m]
        summary.update(branch=ref.removeprefix("refs/heads/") or None,
                       commits=size if size is not None else (len(commits) if commits is not None else None),
                       messages=messages[:MAX_MESSAGES])
        if head and re.fullmatch(r"[0-9a-f]{7,64}", head):
            summary["url"] = f"{repo_url}/commit/{head}"
    elif kind in ("pull_request", "issue"):
        item = payload.get(kind) if isinstance(payload.get(kind), dict) else {}
        number = item.get("number") if isinstance(item.get("number"), int) else payload.get("number")
        action = _text(payload.get("action"))
        if kind == "pull_request" and action == "closed" and item.get("merged"):
            action = "merged"
        number = number if isinstance(number, int) else None
        path = "pull" if kind == "pull_request" else "issues"
        fallback = f"{repo_url}/{path}/{number}" if number is not None else repo_url
        summary.update(action=action, title=_text(item.get("title")), number=number,
                       url=web_url(item.get("html_url")) or fallback)
    elif kind == "release":
        release = payload.get("release") if isinstance(payload.get("release"), dict) else {}
        tag = _text(release.get("tag_name"))
        summary.update(action=_text(payload.get("action")), name=_text(release.get("name")) or tag, tag=tag,
                       url=web_url(release.get("html_url")) or repo_url)
    elif kind == "create":
        summary.update(ref_type=_text(payload.get("ref_type")), ref=_text(payload.get("ref")))
    elif kind == "fork":
        forkee = payload.get("forkee") if isinstance(payload.get("forkee"), dict) else {}
        summary.update(fork=_text(forkee.get("full_name")), url=web_url(forkee.get("html_url")) or repo_url)
    return summary
