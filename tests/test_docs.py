"""The documentation site: built strictly (a broken link, a missing page, an anchor that does not exist fail it),
its configuration reference generated from the settings registry, and the README a short front door to it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from html.parser import HTMLParser

import pytest
import yaml

from service.features import SETTINGS

from .helpers import ROOT

MKDOCS = [sys.executable, "-m", "mkdocs"]


class _Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data):
        self.parts.append(data)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("docs-site")
    result = subprocess.run([*MKDOCS, "build", "--strict", "--site-dir", str(out)], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_the_site_builds_strictly_with_every_page_of_the_nav(site):
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    assert config["strict"] is True
    assert config["site_dir"].startswith("build/")  # MkDocs' default, site/, is the resume's sources: a build wipes it

    def pages(nav):
        for entry in nav:
            value = next(iter(entry.values())) if isinstance(entry, dict) else entry
            yield from (pages(value) if isinstance(value, list) else [value])

    listed = set(pages(config["nav"]))
    written = {path.relative_to(ROOT / "docs").as_posix() for path in (ROOT / "docs").rglob("*.md")}
    assert listed == written  # no page left out of the navigation, none missing
    for page in listed:
        built = site / ("index.html" if page == "index.md" else page.removesuffix(".md") + "/index.html")
        assert built.is_file(), page


def test_the_configuration_reference_lists_every_setting_from_the_registry(site):
    parser = _Text()
    parser.feed((site / "configuration" / "index.html").read_text())
    text = " ".join(" ".join(parser.parts).split())
    for setting in SETTINGS:
        assert setting.name in text, f"{setting.name} is missing from the configuration reference"
        first_words = " ".join(setting.help.replace("`", "").split()[:4])
        assert first_words in text, f"the help of {setting.name} is missing"


def test_a_broken_link_fails_the_build(tmp_path):
    """Strict mode is what makes the link check worth anything: a page linking to a missing one fails."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\nSee [the guide](missing.md).\n")
    (tmp_path / "mkdocs.yml").write_text("site_name: t\nstrict: true\nnav:\n  - Home: index.md\n")
    result = subprocess.run([*MKDOCS, "build", "--site-dir", str(tmp_path / "out")], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "missing.md" in result.stdout + result.stderr


def test_the_readme_is_a_short_front_door_whose_links_all_resolve():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 220
    assert "make run" in readme and "make test" in readme
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme):
        if not re.match(r"https?://", target):
            assert (ROOT / target).exists(), f"the README links to {target}, which does not exist"
