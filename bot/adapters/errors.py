"""Errors an adapter raises for a person to read (bad token, missing setting)."""

__all__ = ["ConfigurationError"]


class ConfigurationError(Exception):
    """A setting is missing or rejected by the platform; the message says which and what to do.

    It never contains a token or secret.
    """
