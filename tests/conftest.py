"""Fixtures that start real servers (Redis, moto's DynamoDB) and build apps on them."""

from __future__ import annotations

import logging
import os
import uuid

import pytest

from service import create_app
from service.features import SETTINGS
from service.storage import open_storage

from .fakes import FakeUpstream
from .helpers import BACKENDS, FakeClock, make_storage_url
from .servers import MotoProcess, RedisServer

# boto3 talks to moto only; these dummy credentials never leave the machine.
os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                  AWS_SESSION_TOKEN="testing", AWS_DEFAULT_REGION="us-east-1")
for _name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
    os.environ.pop(_name, None)


#: What makes a test need a server process or the infrastructure tools (the markers in pyproject.toml),
#: found from the fixtures it uses and the backends it is parametrized with. Tests that open a server
#: themselves carry the marker in their module.
_SERVER_FIXTURES = {"redis_server", "moto_server", "aws"}
_SERVER_BACKENDS = {"redis", "dynamodb"}
_INFRA_FIXTURES = {"checkov_report", "checkov_report_without_skips", "lambda_venv", "runtime_libraries"}


def pytest_collection_modifyitems(items):
    for item in items:
        fixtures = set(item.fixturenames)
        callspec = getattr(item, "callspec", None)
        params = {value for value in callspec.params.values() if isinstance(value, str)} if callspec else set()
        if fixtures & _SERVER_FIXTURES or params & _SERVER_BACKENDS:
            item.add_marker(pytest.mark.server)
        if fixtures & _INFRA_FIXTURES:
            item.add_marker(pytest.mark.infra)

logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto logs every request


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer().start()
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def moto_server():
    server = MotoProcess().start()
    yield server
    server.stop()


@pytest.fixture
def storage_url(request, tmp_path):
    """A fresh, empty store URL for the backend named by ``request.param``."""
    return make_storage_url(request, request.param, tmp_path)



@pytest.fixture(params=BACKENDS)
def storage(request, tmp_path):
    """A connected, empty store of every backend in turn."""
    store = open_storage(make_storage_url(request, request.param, tmp_path))
    store.init()
    yield store
    store.close()



@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def make_app(request, tmp_path, clock, monkeypatch):
    """Build an app on a fresh store: ``make_app("redis", VISITOR_RATE_LIMIT="off")``.

    The process environment's settings are cleared so a developer's shell cannot change a test.
    """
    for setting in SETTINGS:
        monkeypatch.delenv(setting.name, raising=False)
    monkeypatch.setenv("VITAE_INSTANCE_PATH", str(tmp_path / "instance"))

    def factory(backend: str = "sqlite", **config):
        url = make_storage_url(request, backend, tmp_path / f"{backend}-{uuid.uuid4().hex[:6]}")
        settings = {"STORAGE_URL": url, "SECRET_KEY": "test-secret-key", "CLOCK": clock,
                    "SITE_DIR": str(tmp_path / "no-site"), **config}
        app = create_app(settings)
        app.testing = True
        return app
    return factory


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def upstream():
    """A fresh fake upstream HTTP server on loopback (see tests/fakes.py)."""
    fake = FakeUpstream().start()
    yield fake
    fake.stop()
