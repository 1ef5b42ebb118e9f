"""Wire facts of the local HTTP API's credentials: scopes, token and proof types (RFC 9068, RFC 9449)."""

from __future__ import annotations

SCOPE_PROFILE_MANAGE = "export:profile:manage"
SCOPE_EXPORT_RUN = "export:run"
SCOPE_EXPORT_READ = "export:read"
SCOPE_EXPORT_DOWNLOAD = "export:download"
SCOPE_TIMELINE_READ = "timeline:read"
SCOPE_EVIDENCE_READ = "evidence:read"
SCOPE_EVIDENCE_HOLD = "evidence:hold"

#: Every scope a token may carry, in the order `stella token create --help` lists them.
SCOPES = (
    SCOPE_PROFILE_MANAGE,
    SCOPE_EXPORT_RUN,
    SCOPE_EXPORT_READ,
    SCOPE_EXPORT_DOWNLOAD,
    SCOPE_TIMELINE_READ,
    SCOPE_EVIDENCE_READ,
    SCOPE_EVIDENCE_HOLD,
)

#: The JOSE ``typ`` of an access token (RFC 9068 §2.1) and of a DPoP proof (RFC 9449 §4.2).
ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 (a media type, not a secret)
DPOP_PROOF_TYPE = "dpop+jwt"
#: The issuer and audience claims of every token a home mints; a token naming others is refused.
TOKEN_ISSUER = "stella-local"  # noqa: S105 (a name, not a secret)
TOKEN_AUDIENCE = "stella-api"  # noqa: S105 (a name, not a secret)
