"""Fixtures shared by the site's live-service tests."""

from __future__ import annotations

import pytest

from service.features import SETTINGS


@pytest.fixture(scope="module")
def clean_env(tmp_path_factory):
    """No setting of the surrounding environment reaches the module's services; their instance folder is new."""
    with pytest.MonkeyPatch.context() as patch:
        for setting in SETTINGS:
            patch.delenv(setting.name, raising=False)
        patch.setenv("VITAE_INSTANCE_PATH", str(tmp_path_factory.mktemp("instance")))
        yield
