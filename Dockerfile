# syntax=docker/dockerfile:1
# Vitae: the Flask service under gunicorn, serving the built site and the API.
#
#   docker build -t vitae .          (docker compose up builds it too)
#
# The builder makes a virtualenv holding only requirements-server.txt (the
# runtime requirements plus gunicorn's gevent worker) and builds the
# static site (without the resume's PDF); the runtime image copies both and
# runs as an unprivileged user.
# tests/deploy/test_container.py lints it with hadolint and checks its shape;
# tests/deploy/test_compose.py builds it and runs it with docker-compose.yml on an engine.

ARG PYTHON_VERSION=3.13

# --- builder: runtime dependencies and the static site -------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-trixie AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:$PATH"

WORKDIR /src
COPY requirements.txt requirements-server.txt ./
RUN pip install --no-cache-dir -r requirements-server.txt && python -m compileall -q /opt/venv

COPY service/ service/
COPY site/ site/
# The pages carry the public address (canonical links, sitemap) and their live cards: compose passes them
# from .env as build arguments (the Blog link and card only with BLOG_REPO, whose posts the app renders;
# the contact form's Turnstile widget only with TURNSTILE_SITE_KEY, a public key).
ARG SITE_URL=http://localhost:8000
ARG SITE_WIDGETS=visitors,spotify,github,blog,contact
ARG BLOG_REPO=
ARG TURNSTILE_SITE_KEY=
# No resume.pdf (and no link to one): printing it needs Chromium, some 400 MB and minutes more per build for
# one file. A self-hosted site gets it from a build made where Chromium is (docs/self-hosting.md).
RUN VITAE_INSTANCE_PATH=/tmp/vitae-build SITE_PDF=off flask --app service.wsgi site build

# --- runtime -------------------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-trixie

ARG UID=10001
LABEL org.opencontainers.image.title="vitae" \
      org.opencontainers.image.description="A personal resume site you own: live widgets, cookieless visitor counter, contact via Telegram." \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.base.name="python:3.13-slim-trixie"

ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    FLASK_APP=service.wsgi \
    SITE_DIR=/app/build/site \
    VITAE_INSTANCE_PATH=/app/instance

RUN groupadd --system --gid "${UID}" vitae \
    && useradd --system --uid "${UID}" --gid vitae --home-dir /app --no-create-home --shell /usr/sbin/nologin vitae

WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /src/build/site build/site
COPY gunicorn.conf.py ./
COPY service/ service/
# The site's sources (resume, templates, schema, assets): the pages rendered per request (the blog, the
# sitemap, the contact form's answers, /stats) read the resume and the templates at run time.
COPY site/ site/
# Bytecode made at build time: the app's user cannot write next to the sources.
RUN python -m compileall -q service \
    && mkdir instance && chown vitae:vitae instance

USER ${UID}:${UID}
EXPOSE 8000

# The origin secret is sent when one is set, so the check passes behind a CDN too.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('BIND', ':8000').rsplit(':', 1)[1]; urllib.request.urlopen(urllib.request.Request(f'http://127.0.0.1:{port}/api/health', headers={'X-Origin-Verify': os.environ.get('ORIGIN_SECRET', '')}), timeout=4)"]

CMD ["gunicorn", "--config", "gunicorn.conf.py", "service.wsgi:app"]
