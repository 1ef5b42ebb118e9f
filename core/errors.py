"""One error hierarchy for every failure a user can meet.

Each class carries the process exit code of the table in docs/architecture.md, so the CLI maps errors to
exit codes in exactly one place (``app.cli``). ``diagnostics()`` gives the sentence a user reads:
what happened, where, and what to do next.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes shared by every command."""

    OK = 0
    USAGE = 2
    BAD_INPUT = 3
    INTEGRITY = 4
    SIGNATURE = 5
    TRUST = 6
    POLICY = 7
    ENVIRONMENT = 8
    CANCELLED = 130


class StellaError(Exception):
    """Base of every error the tool raises on purpose.

    ``path`` names the file concerned, ``pointer`` a JSON pointer inside it, ``hint`` what to do.
    """

    exit_code: ExitCode = ExitCode.BAD_INPUT
    code: str = "error"

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        pointer: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.pointer = pointer
        self.hint = hint

    def diagnostics(self) -> str:
        """A full sentence for humans: where, what, and what to do."""
        where = ""
        if self.path:
            where = f"{self.path}"
            if self.pointer is not None:
                where += f" at {self.pointer or '/'}"
            where += ": "
        text = f"{where}{self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text

    def to_dict(self) -> dict[str, object]:
        """The stable JSON form used by ``--json`` output."""
        out: dict[str, object] = {
            "error": self.code,
            "message": self.message,
            "exitCode": int(self.exit_code),
        }
        if self.path is not None:
            out["path"] = self.path
        if self.pointer is not None:
            out["pointer"] = self.pointer
        if self.hint is not None:
            out["hint"] = self.hint
        return out


class UsageError(StellaError):
    """A command was called with arguments that make no sense together."""

    exit_code = ExitCode.USAGE
    code = "usage"


class BadInputError(StellaError):
    """Malformed document, bundle or argument value."""

    exit_code = ExitCode.BAD_INPUT
    code = "bad-input"


class SchemaError(BadInputError):
    """A document failed its format's JSON Schema or a semantic check the schema cannot express."""

    code = "schema"


class UnsupportedFormatError(BadInputError):
    """The document's format or version is not one the tool accepts."""

    code = "unsupported-format"


class IntegrityError(StellaError):
    """Digest or size mismatch, missing or unlisted file, unsafe path."""

    exit_code = ExitCode.INTEGRITY
    code = "integrity"


class SignatureError(StellaError):
    """Bad signature, or no trusted signer."""

    exit_code = ExitCode.SIGNATURE
    code = "signature"


class TrustMetadataError(StellaError):
    """TUF threshold, rollback, expiry or wrong delta base."""

    exit_code = ExitCode.TRUST
    code = "trust-metadata"


class PolicyRefusal(StellaError):
    """Refused by policy: cross-tenant selection, stale feed, quota."""

    exit_code = ExitCode.POLICY
    code = "policy"


class EnvironmentFailure(StellaError):
    """I/O, disk full, permission, store locked."""

    exit_code = ExitCode.ENVIRONMENT
    code = "environment"


class StoreLockedError(EnvironmentFailure):
    """Another process holds the store's writer lock."""

    code = "store-locked"


class StoreVersionError(EnvironmentFailure):
    """The store was written by a newer version of the tool."""

    code = "store-version"


class NotFoundError(BadInputError):
    """A named object (key, document, run) does not exist."""

    code = "not-found"


class Cancelled(StellaError):
    """The user cancelled the operation."""

    exit_code = ExitCode.CANCELLED
    code = "cancelled"


class AuthenticationError(StellaError):
    """An API request without a valid credential: no, malformed, expired or revoked token, or a failed DPoP proof.

    The HTTP surface answers 401 with ``www_authenticate`` as the ``WWW-Authenticate`` value (RFC 6750 §3,
    RFC 9449 §7.1); ``message`` says what was wrong without echoing the credential.
    """

    exit_code = ExitCode.SIGNATURE
    code = "unauthenticated"
    http_status = 401

    def __init__(self, message: str, *, www_authenticate: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.www_authenticate = www_authenticate


class PermissionDenied(PolicyRefusal):
    """A valid credential whose scopes do not allow the operation (HTTP 403 ``insufficient_scope``)."""

    code = "forbidden"
    http_status = 403

    def __init__(self, message: str, *, scope: str, www_authenticate: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.scope = scope
        self.www_authenticate = www_authenticate
