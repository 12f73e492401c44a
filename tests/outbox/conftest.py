"""The channels' real servers (aiosmtpd, webhook receivers) for the outbox's routing tests."""

from ..channels.conftest import authority, receiver, smtp_server  # noqa: F401 - fixtures shared with tests/channels
