"""Which channels each kind of message goes to: ``NOTIFY_CONTACT``, ``NOTIFY_DIGEST``, ``NOTIFY_ALERTS``.

Each setting is a comma-separated list of channel names (`service.channels.CHANNELS`); empty means every
configured channel. `channel_names` parses one (an unknown name is a `ValueError`, which the settings
loader turns into a `ConfigError` naming the variable); `check` refuses at start-up a name whose channel
is not configured; `routes` is the list a message of one kind is queued for, one outbox record each.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..channels import CHANNELS
from ..channels.settings import missing
from ..core.config import ConfigError

#: The setting that routes each kind of message (`service.channels.KINDS`).
SETTING_OF = {"contact": "NOTIFY_CONTACT", "digest": "NOTIFY_DIGEST", "alert": "NOTIFY_ALERTS"}


def channel_names(value: str) -> tuple[str, ...]:
    """The ``NOTIFY_*`` parser: channel names, deduplicated in the order written; empty: ()."""
    names = [name.strip().lower() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in CHANNELS]
    if unknown:
        raise ValueError(f"unknown channel {', '.join(map(repr, unknown))}; expected names among "
                         f"{', '.join(CHANNELS)}")
    return tuple(dict.fromkeys(names))


def configured(settings: Mapping[str, Any]) -> tuple[str, ...]:
    """The channels the ``settings`` set up, in `CHANNELS` order."""
    return tuple(name for name in CHANNELS if not missing(name, settings))


def routes(settings: Mapping[str, Any], kind: str) -> tuple[str, ...]:
    """The channels a message of ``kind`` (contact, digest, alert) goes to: its ``NOTIFY_*`` setting, or
    every configured channel when that is empty (then possibly none)."""
    return tuple(settings.get(SETTING_OF[kind]) or ()) or configured(settings)


def check(settings: Mapping[str, Any]) -> None:
    """Raise `ConfigError` when a ``NOTIFY_*`` setting names a channel that is not configured."""
    for kind, setting in SETTING_OF.items():
        for name in settings.get(setting) or ():
            unset = missing(name, settings)
            if unset:
                raise ConfigError(f"invalid {setting}: channel {name!r} for {kind} messages is not configured "
                                  f"(set {', '.join(unset)})")
