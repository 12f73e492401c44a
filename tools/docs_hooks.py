"""MkDocs hooks (mkdocs.yml ``hooks``): pages generated from the code, so the documentation cannot drift from it.

``docs/configuration.md`` holds the marker ``<!-- settings -->``; the build
puts in its place one table per part of the service (the core, the
channels, then each feature in the order of ``service.features.FEATURES``),
one row per setting of the registry (``service.features.SETTINGS``): name,
default, whether it is a secret, and its help text. A setting added to the
code is in the reference at the next build.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKER = "<!-- settings -->"


def settings_reference() -> str:
    """The Markdown tables of every setting, grouped by the part of the service that declares it."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from service.channels import SETTINGS as CHANNEL_SETTINGS
    from service.core.config import CORE_SETTINGS
    from service.features import FEATURES, SETTINGS

    groups = [("Core", "every part of the service", CORE_SETTINGS),
              ("Channels", "`service/channels/` (e-mail and webhooks beside Telegram)", CHANNEL_SETTINGS)]
    groups += [(feature.name.capitalize(), f"`service/{feature.name}/`", feature.settings)
               for feature in FEATURES if feature.settings]
    listed = {setting.name for _, _, settings in groups for setting in settings}
    rest = tuple(setting for setting in SETTINGS if setting.name not in listed)
    if rest:  # the registry is what the service reads: nothing of it may be left out
        groups.append(("Other", "the service", rest))
    parts = []
    for title, where, settings in groups:
        rows = [f"| `{s.name}` | {_default(s.default)} | {'yes' if s.secret else ''} | {_cell(s.help)} |"
                for s in settings]
        parts.append(f"### {title}\n\nRead by {where}.\n\n| variable | default | secret | meaning |\n"
                     "|---|---|---|---|\n" + "\n".join(rows) + "\n")
    return "\n".join(parts)


def _default(value: str | None) -> str:
    if value is None:
        return "(see meaning)"
    return f"`{value}`" if value else "(empty)"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARKER in markdown:
        return markdown.replace(MARKER, settings_reference())
    return markdown

