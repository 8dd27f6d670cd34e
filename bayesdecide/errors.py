"""Exceptions raised by bayesdecide. Every message names the offending column or key and the fix."""

from __future__ import annotations


class BayesDecideError(Exception):
    """Base class for all bayesdecide errors."""


class SpecError(BayesDecideError, ValueError):
    """The experiment spec or model card is inconsistent."""


class CardError(SpecError):
    """A model card is missing, unreadable or invalid. The message names the key and the fix."""


class DataValidationError(BayesDecideError, ValueError):
    """The data do not match the experiment spec (missing column, bad values, empty cells...)."""


class RunFolderError(BayesDecideError):
    """A run folder is missing, incomplete or damaged (a file cannot be read). The message names
    the file and what to do."""


class RegistryError(BayesDecideError):
    """The run registry cannot be opened, is locked by another process for too long, or has no
    such run. The message names the registry file and what to do."""
