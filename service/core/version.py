"""The product's version: the app factory, the upstream User-Agent and ``/api/health`` read it from here."""

__version__ = "0.1.0"
