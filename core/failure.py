"""Failure classes: what kind of failure ended a run, mapped once from the error hierarchy.

Every failed run records one class, used as the ``failure_class`` label of the failure metrics (docs/operations.md)
and shown by `stella export show`. The class says what an operator does next:

| class | what failed | what to do |
|---|---|---|
| ``input`` | a malformed document, bundle or argument (exit 2 or 3) | fix the input |
| ``integrity`` | a digest, size, missing file or unsafe path (exit 4) | find who changed the data |
| ``signature`` | a bad signature or no trusted signer (exit 5) | check keys and the sender |
| ``trust`` | TUF metadata: threshold, rollback, expiry (exit 6) | refresh or repair trust metadata |
| ``policy`` | refused by policy: cross-tenant, stale feed, quota (exit 7) | change the request or the policy |
| ``environment`` | I/O, disk full, permission (exit 8) | repair the host |
| ``transient`` | the store was locked, the process running the export died, a timeout | run it again |
| ``bug`` | an exception the tool did not raise on purpose | report it |

The mapping is :data:`_BY_ERROR` below, checked in order (the first base class that matches wins), so a new
:class:`core.errors.StellaError` subclass is classed by the family it belongs to without being listed here.
"""

from __future__ import annotations

import errno
from enum import StrEnum

from core.errors import (
    BadInputError,
    EnvironmentFailure,
    IntegrityError,
    PolicyRefusal,
    SignatureError,
    StellaError,
    StoreLockedError,
    TrustMetadataError,
    UsageError,
)


class FailureClass(StrEnum):
    """The kind of failure that ended a run."""

    INPUT = "input"
    INTEGRITY = "integrity"
    SIGNATURE = "signature"
    TRUST = "trust"
    POLICY = "policy"
    ENVIRONMENT = "environment"
    TRANSIENT = "transient"
    BUG = "bug"


# Most specific first: a locked store is an environment failure that goes away by itself.
_BY_ERROR: tuple[tuple[type[StellaError], FailureClass], ...] = (
    (StoreLockedError, FailureClass.TRANSIENT),
    (UsageError, FailureClass.INPUT),
    (BadInputError, FailureClass.INPUT),
    (IntegrityError, FailureClass.INTEGRITY),
    (SignatureError, FailureClass.SIGNATURE),
    (TrustMetadataError, FailureClass.TRUST),
    (PolicyRefusal, FailureClass.POLICY),
    (EnvironmentFailure, FailureClass.ENVIRONMENT),
)

#: ``errno`` values of an OS error that a later attempt may not meet again.
_TRANSIENT_ERRNOS = frozenset(
    {errno.EAGAIN, errno.EINTR, errno.ETIMEDOUT, errno.ECONNRESET, errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.EBUSY}
)

#: The error code `core.runs` records for a run whose process stopped before it finished.
INTERRUPTED_CODE = "interrupted"


def classify(exc: BaseException) -> FailureClass:
    """The class of the failure ``exc``: from its place in the error hierarchy; anything unexpected is ``bug``."""
    cause = exc.__cause__
    if isinstance(exc, StellaError):
        for base, failure in _BY_ERROR:
            if isinstance(exc, base):
                if failure is FailureClass.ENVIRONMENT and isinstance(cause, OSError) and _transient_os(cause):
                    return FailureClass.TRANSIENT
                return failure
        return FailureClass.BUG  # a StellaError outside every family (Cancelled ends a run aborted, not failed)
    if isinstance(exc, TimeoutError | ConnectionError):
        return FailureClass.TRANSIENT
    if isinstance(exc, OSError):
        return FailureClass.TRANSIENT if _transient_os(exc) else FailureClass.ENVIRONMENT
    return FailureClass.BUG


def _transient_os(exc: OSError) -> bool:
    return isinstance(exc, TimeoutError | ConnectionError) or exc.errno in _TRANSIENT_ERRNOS
