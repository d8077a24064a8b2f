"""Exceptions a user of the activations layer can meet (all subclass ValueError for the CLI)."""

from __future__ import annotations


class ActivationError(ValueError):
    """Base class: a user-fixable problem in sending, configuration or events."""


class SendBlockedError(ActivationError):
    """Sending was stopped on purpose: kill switch, missing approval or a volume ceiling."""


class ProviderConfigError(ActivationError):
    """A provider is misconfigured (e.g. live sending without a key)."""


class SignatureError(ActivationError):
    """A signed request did not verify."""
