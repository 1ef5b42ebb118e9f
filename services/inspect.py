"""`stella inspect BUNDLE`: what a bundle says about itself, at a glance, WITHOUT verifying it.

The manifest (``export.json``, the archive's first entry) is read through the same hardened archive reader
`stella verify` uses, so a hostile archive fails the same clean way; nothing else of the bundle is read past its
signature's entry, and no signature, digest or size is checked. Every surface says so first: the result's
:attr:`Inspection.note` and ``"verified": false`` in its JSON. It loads no more than `stella verify` does.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.archive.reader import ReaderLimits, SafeArchiveReader
from core.contract.bundle import MANIFEST, MANIFEST_SIG
from core.errors import BadInputError, IntegrityError
from verify.bundle import MAX_MANIFEST, copy_member
from verify.manifest import ManifestReader


def how_to_verify(bundle: Path) -> str:
    """The command that does verify ``bundle``."""
    return f"stella verify {bundle} --key SIGNER.pub (or with the signer in the trust store: stella verify {bundle})"


@dataclass(frozen=True)
class Inspection:
    """A bundle's manifest, read unverified: what it claims to be, for whom, from when, how big, signed by which key.

    ``expires_at`` is the signed expiry of a kind that has one (a risk bundle's ``expiresAt``), else None;
    ``base`` a delta's base (``stateDigest``, ``sequence``, ``runId``); ``encryption`` a summary of the manifest's
    encryption section (None: not encrypted). ``signed`` says whether a signature entry follows the manifest; nothing
    says it is valid."""

    bundle: Path
    archive_size: int
    profile: str
    kind: str
    variant: str
    tenant: str | None
    run_id: str | None
    created_at: str | None
    expires_at: str | None
    counts: Mapping[str, Any]
    signer_keyid: str | None
    signer_algorithm: str | None
    signed: bool
    files: int
    payload_bytes: int
    encryption: Mapping[str, Any] | None
    base: Mapping[str, Any] | None
    tool: str | None
    schema: str | None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def note(self) -> str:
        """The first thing every surface shows: this is not a verification, and what is."""
        return (
            "NOT VERIFIED: this is what the bundle's manifest claims, read without checking any signature, digest "
            f"or size; verify it with: {how_to_verify(self.bundle)}"
        )

    def to_dict(self) -> dict[str, Any]:
        """`stella inspect --json`."""
        return {
            "verified": False,
            "note": self.note,
            "bundle": str(self.bundle),
            "archiveSize": self.archive_size,
            "profile": self.profile,
            "kind": self.kind,
            "variant": self.variant,
            "tenant": self.tenant,
            "runId": self.run_id,
            "createdAt": self.created_at,
            "expiresAt": self.expires_at,
            "counts": dict(self.counts),
            "signer": {"keyid": self.signer_keyid, "algorithm": self.signer_algorithm, "signaturePresent": self.signed},
            "files": self.files,
            "payloadBytes": self.payload_bytes,
            "encryption": dict(self.encryption) if self.encryption is not None else None,
            "base": dict(self.base) if self.base is not None else None,
            "tool": self.tool,
            "schema": self.schema,
        }

    def rows(self) -> list[tuple[str, str]]:
        """(label, value) lines, as the CLI and the TUI show them."""
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items())) or "none"
        signer = f"{self.signer_algorithm or '?'} key {self.signer_keyid or '(none named)'}"
        if not self.signed:
            signer += "; NO signature entry follows the manifest"
        encryption = "none" if self.encryption is None else self.encryption.get("summary", "encrypted")
        rows = [
            ("profile", self.profile),
            ("tenant", self.tenant or "?"),
            ("run", self.run_id or "?"),
            ("created", self.created_at or "?"),
            ("expires", self.expires_at or "no signed expiry for this kind"),
            ("counts", counts),
            ("signer", signer),
            ("files", f"{self.files} listed, {self.payload_bytes} bytes"),
            ("archive", f"{self.archive_size} bytes"),
            ("encryption", encryption),
        ]
        if self.base is not None:
            rows.append(
                ("base", f"state {str(self.base.get('stateDigest', '?'))[:12]} (sequence {self.base.get('sequence')})")
            )
        return rows


def _section(header: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = header.get(name)
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _encryption(section: Any) -> dict[str, Any] | None:
    if not isinstance(section, dict) or not section:
        return None
    recipients = section.get("recipients")
    files = section.get("files")
    n_files = len(files) if isinstance(files, list) else 0
    if isinstance(recipients, list) and recipients:
        summary = f"age, {len(recipients)} recipient(s), {n_files} file(s)"
    else:
        summary = f"age with a passphrase, {n_files} file(s)"
    return {
        "summary": summary,
        "recipients": len(recipients) if isinstance(recipients, list) else 0,
        "files": n_files,
    }


def inspect_bundle(bundle: Path) -> Inspection:
    """Read ``bundle``'s manifest through the safe archive reader, without verifying anything (`stella inspect`).

    Raises what the archive reader raises for a damaged or hostile archive, :class:`core.errors.BadInputError` when
    the archive does not start with a manifest or the manifest is not one."""
    try:
        archive_size = bundle.stat().st_size
    except OSError as exc:
        raise BadInputError(f"cannot read the bundle: {exc.strerror}", path=str(bundle)) from None
    with tempfile.TemporaryDirectory(prefix="stella-inspect-") as work:
        manifest_path = Path(work) / MANIFEST
        with SafeArchiveReader(bundle, ReaderLimits()) as reader:
            members = iter(reader)
            first = next(members, None)
            if first is None or first.name != MANIFEST:
                found = repr(first.name) if first is not None else "an empty archive"
                raise BadInputError(
                    f"not a stella bundle: its first entry must be {MANIFEST}, found {found}", path=str(bundle)
                )
            if first.size > MAX_MANIFEST:
                raise IntegrityError(f"{MANIFEST} is {first.size} bytes, over the limit", path=MANIFEST)
            copy_member(first, manifest_path)
            second = next(members, None)
            signed = second is not None and second.name == MANIFEST_SIG
        manifest = ManifestReader(manifest_path)
        payload_bytes = sum(entry.size for entry in manifest.files())
    header = manifest.header
    profile, signing, tool, counts = (_section(header, name) for name in ("profile", "signing", "tool", "counts"))
    kind, variant = str(profile.get("kind") or "?"), str(profile.get("variant") or "?")
    section = _section(header, kind)
    base = header.get("base") if isinstance(header.get("base"), dict) else None
    return Inspection(
        bundle=bundle,
        archive_size=archive_size,
        profile=str(profile.get("id") or f"{kind}:{variant}"),
        kind=kind,
        variant=variant,
        tenant=_text(header.get("tenant")),
        run_id=_text(header.get("runId")),
        created_at=_text(header.get("createdAt")),
        expires_at=_text(section.get("expiresAt")),
        counts=counts,
        signer_keyid=_text(signing.get("keyid")),
        signer_algorithm=_text(signing.get("algorithm")),
        signed=signed,
        files=manifest.file_count,
        payload_bytes=payload_bytes,
        encryption=_encryption(header.get("encryption")),
        base=base,
        tool=" ".join(str(tool[k]) for k in ("name", "version") if k in tool) or None,
        schema=_text(header.get("schema")),
    )
