"""Async client for the Dataset Management API (publishing API v1)."""

from dsmsyncd.dsmapi.client import DsmapiClient
from dsmsyncd.dsmapi.errors import (
    AuthError,
    DsmapiError,
    OutcomeUnknown,
    RejectedError,
    ResourceFailed,
    RetryableServerError,
    ServerError,
    TransportError,
)
from dsmsyncd.dsmapi.models import (
    API,
    CURRENT_USER,
    InputSchema,
    OutputSchema,
    Revision,
    Source,
    TaskSet,
    UploadPreferences,
)
from dsmsyncd.dsmapi.retry import RetryPolicy
from dsmsyncd.dsmapi.transport import Credentials

__all__ = [
    "API",
    "CURRENT_USER",
    "AuthError",
    "Credentials",
    "DsmapiClient",
    "DsmapiError",
    "InputSchema",
    "OutcomeUnknown",
    "OutputSchema",
    "RejectedError",
    "ResourceFailed",
    "RetryPolicy",
    "RetryableServerError",
    "Revision",
    "ServerError",
    "Source",
    "TaskSet",
    "TransportError",
    "UploadPreferences",
]
