"""Errors a user of the ml package can meet: each names the file, row or field at fault."""

from __future__ import annotations


class MLError(ValueError):
    """Base class: the CLI prints it as one line (it subclasses ValueError)."""


class TransactionsFileError(MLError):
    """A transactions file that cannot be used as it is (names the file, column and row)."""


class NotEnoughHistoryError(MLError):
    """Too little history before the as-of date to train and evaluate for the horizon."""


class RegistryError(MLError):
    """The model registry has no usable model or a damaged entry."""
