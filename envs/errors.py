"""Errors raised when a user asks for an environment we cannot turn into pixels.

Each error says what is wrong and how to fix it, in one message. They all derive from
`EnvError` (a `ValueError`), so callers can catch the family at once.
"""

from __future__ import annotations


class EnvError(ValueError):
    """Base class: a pixel environment could not be made as asked."""


class UnknownEnvError(EnvError):
    """The id is not registered with Gymnasium (nor with any of the extras)."""


class MissingExtraError(EnvError):
    """The environment needs an optional dependency group that is not installed."""


class NotRenderableError(EnvError):
    """The environment cannot render `rgb_array` frames."""


class UnsupportedActionSpaceError(EnvError):
    """The action space is neither a 1-D `Box` nor a `Discrete`."""
