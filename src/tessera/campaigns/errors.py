"""Errors a marketing-ops user can meet in the campaigns package, each naming file, line and field."""

from __future__ import annotations


class CampaignsError(ValueError):
    """Base class: every campaigns error is a ValueError so the CLI prints it as one line."""


class CatalogError(CampaignsError):
    """The catalog file is invalid; ``problems`` lists every problem found, one line each."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = list(problems)
        head = f"{path}: {len(self.problems)} problem(s) in the campaign catalog"
        super().__init__(head + "\n  " + "\n  ".join(self.problems))


class UnknownEnvironmentError(CampaignsError):
    """TESSERA_ENVIRONMENT names an environment no template id of the catalog is given for."""


class MatrixInputError(CampaignsError):
    """The inputs of a matrix date are missing or inconsistent (e.g. a gap in the history)."""
