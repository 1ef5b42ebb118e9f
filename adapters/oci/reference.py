"""``oci://HOST[:PORT]/REPOSITORY[:TAG][@sha256:HEX]`` references, checked against the distribution spec's grammar."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from core.errors import UsageError

SCHEME = "oci://"
#: A path component of a repository name (distribution spec: ``[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*``).
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?"
)


@dataclass(frozen=True)
class Reference:
    """A parsed reference: ``repository`` may be empty (``oci://HOST`` alone)."""

    host: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        out = f"{self.host}/{self.repository}"
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    @property
    def hostname(self) -> str:
        """The host without the port (and without the brackets of an IPv6 literal)."""
        if self.host.startswith("["):
            return self.host[1 : self.host.index("]")]
        return self.host.rsplit(":", 1)[0] if ":" in self.host else self.host

    @property
    def loopback(self) -> bool:
        """Whether the host is this machine (127.0.0.0/8, ::1, localhost): the only place plain HTTP is allowed."""
        return is_loopback(self.hostname)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an IP address, without port) is this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def valid_component(text: str) -> bool:
    return _COMPONENT.fullmatch(text) is not None


def valid_tag(text: str) -> bool:
    return _TAG.fullmatch(text) is not None


def parse(text: str, *, what: str = "reference") -> Reference:
    """Parse ``oci://HOST/REPO[:TAG][@DIGEST]``; a malformed one is a usage error (exit 2) naming the part."""
    if not text.startswith(SCHEME):
        raise UsageError(f"the {what} {text!r} does not start with {SCHEME}")
    rest = text[len(SCHEME) :]
    host, _, path = rest.partition("/")
    if not _HOST.fullmatch(host):
        raise UsageError(f"the {what} {text!r} has no valid registry host")
    digest = None
    if "@" in path:
        path, _, digest = path.partition("@")
        if not _DIGEST.fullmatch(digest):
            raise UsageError(f"the digest of {text!r} is not sha256:<64 lowercase hex>")
    tag = None
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        path, _, tag = path.rpartition(":")
        if not valid_tag(tag):
            raise UsageError(f"the tag of {text!r} is not a valid tag", hint="letters, digits, '_', '.', '-'")
    path = path.strip("/")
    if path and not all(valid_component(c) for c in path.split("/")):
        raise UsageError(
            f"the repository of {text!r} is not a valid repository name",
            hint="lowercase letters and digits, separated by '.', '_', '__' or '-', in '/'-separated components",
        )
    if len(path) > 255:
        raise UsageError(f"the repository of {text!r} is longer than 255 characters")
    return Reference(host, path, tag, digest)
