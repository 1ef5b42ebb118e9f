"""``POST/GET /api/v1/export/runs/{id}/distributions``: the request body, its target, and the call of the service.

A target names where the run's bundle goes, as the CLI takes it:

* ``oci://HOST[/TENANT/NAME][:TAG]`` and ``s3://BUCKET/PREFIX``: `stella distribute RUN --to URL`
  (``services.distribute.distribute_run``), with the options of that command that make sense over HTTP. Never a
  credential, nor a file on the server to read one from: the server pushes as `stella distribute` does when given
  no ``--registry-config`` or ``--credentials-file`` (a registry that admits an anonymous push; for ``s3://`` the
  credentials boto3 finds in the server's environment).
* an absolute directory on the server host: `stella export download RUN --to DIR`
  (``services.export.download_run``): the bundle is copied into it, digest checked, recorded as a ``file``
  distribution. A relative path, a path inside the server's home (its store, keys and blobs are private) or, when
  the server was given ``distribute_dirs``, a directory outside them is refused before anything is written.

Any other ``SCHEME://`` goes to the service, which refuses it with the CLI's own message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.clock import parse_at
from core.errors import UsageError
from core.home import Home
from core.runs import Distribution
from services.distribute import Access
from services.distribute_s3 import LockMode, S3Options

OCI = "oci://"
S3 = "s3://"


class DistributionCreate(BaseModel):
    """Where to hand a succeeded run's bundle, and how (the options of `stella distribute`, credentials excepted)."""

    model_config = ConfigDict(extra="forbid")
    to: str = Field(
        min_length=1,
        max_length=2048,
        description="an absolute directory on the server host, oci://HOST[/TENANT/NAME][:TAG], or s3://BUCKET/PREFIX",
        examples=["oci://127.0.0.1:5000/default/osv"],
    )
    plainHttp: bool = Field(
        default=False, description="oci:// only: HTTP without TLS, only for a registry on 127.0.0.1/::1/localhost"
    )
    chunkSize: int | None = Field(
        default=None,
        ge=1,
        le=1 << 32,
        description="oci:// and s3://: upload chunk size in bytes (default 8 MiB); for s3:// the part size (5 MiB min)",
    )
    endpointUrl: str | None = Field(
        default=None, max_length=2048, description="s3:// only: an S3-compatible store (https; http on loopback only)"
    )
    pathStyle: bool = Field(default=False, description="s3:// only: path-style addressing (URL/BUCKET/KEY)")
    objectLock: Literal["governance", "compliance"] | None = Field(
        default=None, description="s3:// only: Object Lock retention mode"
    )
    retainUntil: str | None = Field(
        default=None, max_length=64, description="s3:// only: retention end, RFC 3339 (with objectLock)"
    )
    legalHold: bool = Field(default=False, description="s3:// only: put a legal hold on the stored object")


@dataclass(frozen=True)
class Target:
    """A checked target: a registry or bucket URL (``url``) or a directory on this host (``directory``)."""

    url: str | None = None
    directory: Path | None = None


_S3_ONLY = ("endpointUrl", "pathStyle", "objectLock", "retainUntil", "legalHold")


def target_of(body: DistributionCreate, home: Home, roots: Sequence[Path] | None) -> Target:
    """The body's target, refused (:class:`UsageError`, exit 2) when it cannot be one or an option does not apply."""
    given = body.model_fields_set
    s3_options = [name for name in _S3_ONLY if name in given and getattr(body, name) not in (None, False)]
    if body.to.startswith(S3):
        if body.plainHttp:
            raise UsageError("plainHttp applies to oci:// targets only", pointer="/plainHttp")
        return Target(url=body.to)
    if s3_options:
        raise UsageError(f"{s3_options[0]} applies to s3:// targets only", pointer=f"/{s3_options[0]}")
    if body.to.startswith(OCI) or "://" in body.to:
        return Target(url=body.to)  # another scheme: the service refuses it as the CLI does
    for name in ("plainHttp", "chunkSize"):
        if getattr(body, name) not in (None, False):
            raise UsageError(f"{name} applies to oci:// and s3:// targets only", pointer=f"/{name}")
    return Target(directory=server_directory(body.to, home, roots))


def server_directory(text: str, home: Home, roots: Sequence[Path] | None, *, pointer: str = "/to") -> Path:
    """``text`` as an existing directory on the server host, symbolic links resolved; refused (:class:`UsageError`)
    when relative, missing, not a directory, inside the home, or outside ``roots`` (when given)."""
    if "\x00" in text:
        raise UsageError("a directory path cannot contain a NUL character", pointer=pointer)
    path = Path(text)
    if not path.is_absolute():
        raise UsageError(
            f"the directory {text!r} is not an absolute path",
            pointer=pointer,
            hint="name a directory on the server host from its root, e.g. /media/kit/bundles",
        )
    try:
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError):
        raise UsageError(f"no directory {text} on the server host", pointer=pointer) from None
    if not resolved.is_dir():
        raise UsageError(f"{text} is not a directory on the server host", pointer=pointer)
    private = home.root.resolve()
    if resolved == private or resolved.is_relative_to(private):
        raise UsageError(
            f"{text} is inside the server's home, whose store, keys and blobs are private",
            pointer=pointer,
            hint="name a directory outside the home",
        )
    if roots is not None and not any(resolved == r or resolved.is_relative_to(r) for r in _resolved(roots)):
        raise UsageError(
            f"{text} is outside the directories this server distributes to",
            pointer=pointer,
            hint="name a directory under one the server was started with",
        )
    return resolved


def _resolved(roots: Sequence[Path]) -> list[Path]:
    return [r.resolve() for r in roots]


def s3_options(body: DistributionCreate) -> S3Options:
    """The ``--to s3://`` options of the body, as `stella distribute` builds them from its flags."""
    options = S3Options(
        endpoint_url=body.endpointUrl,
        path_style=body.pathStyle,
        lock_mode=LockMode(body.objectLock) if body.objectLock else None,
        retain_until=parse_at(body.retainUntil) if body.retainUntil else None,
        legal_hold=body.legalHold,
    )
    return options if body.chunkSize is None else replace(options, part_size=body.chunkSize)


def access(body: DistributionCreate) -> Access:
    """How to reach a registry: no credentials (see the module docstring), plain HTTP and the chunk size as asked."""
    found = Access(plain_http=body.plainHttp)
    return found if body.chunkSize is None else replace(found, chunk_size=body.chunkSize)


def file_answer(dist: Distribution) -> dict[str, Any]:
    """A directory copy in the shape of the other answers: its type and its record (`stella export download --json`
    prints the record alone)."""
    return {"type": dist.type, "distribution": dist.to_dict()}
