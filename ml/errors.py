"""Errors of the ml service's domain code; the web layer maps them to HTTP."""
from __future__ import annotations


class MlError(Exception):
    """Base of the ml domain's errors."""


class ModelNotFoundError(MlError):
    """No such model in the caller's account."""


class ModelStateError(MlError):
    """The action does not fit the model's status (promoting one not ready)."""
