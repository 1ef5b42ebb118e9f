"""Second, digest-checked reads of a bundle that verified, for the verifiers of kinds of bundle.

:func:`verify.bundle.verify_bundle` reads a bundle once and extracts nothing. What a kind of bundle needs to look
inside (an attestation or risk manifest, the documents to import) is copied out by a second read, and each file
copied is checked against the digest the *verified* ``export.json`` lists (whose own digest must be the one that
verified), so what is checked and imported is what the signature covers, even if the archive changed in between.
(`stella trivy install` stages a Trivy cache the same way, with :func:`verify.bundle.copy_member`.)
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from core.archive.reader import ReaderLimits, SafeArchiveReader
from core.contract.bundle import MANIFEST
from core.errors import BadInputError, IntegrityError, SignatureError
from core.progress import Observer
from core.signing import dsse_signer
from core.trust import TrustedKey
from verify.bundle import Recorder, VerifyReport, copy_member
from verify.manifest import ListedFile, ManifestReader


class KindVerification(Recorder):
    """The checks of a kind of bundle (``risk``, ``attestation``) after :func:`verify.bundle.verify_bundle`.

    Its checks are named after :attr:`kind`: ``<kind> profile``, ``<kind> files``, ``<kind> manifest``.
    """

    kind = ""

    def __init__(
        self,
        bundle: Path,
        keys: Sequence[TrustedKey],
        report: VerifyReport,
        observer: Observer | None,
        work: Path,
        extract_to: Path | None,
    ) -> None:
        super().__init__(report, observer)
        self.bundle = bundle
        self.keys = keys
        self.work = work
        self.extract_to = extract_to

    def check_profile(self, article: str = "a") -> None:
        """Check ``<kind> profile``: the bundle is a ``<kind>``/``bundle`` export."""
        kind = self.kind
        profile = self.report.manifest.profile
        if (profile.kind, profile.variant) != (kind, "bundle"):
            raise self.failed(
                f"{kind} profile",
                BadInputError(
                    f"not {article} {kind} bundle: profile {profile.id!r} ({profile.ref})",
                    path=str(self.bundle),
                    hint="`stella verify` checks bundles of other profiles",
                ),
            )
        self.passed(f"{kind} profile", f"{profile.id} bundle")

    def read_files(
        self, manifest_sha: str, prefixes: tuple[str, ...], required: Sequence[str], what: str
    ) -> dict[str, Path]:
        """Check ``<kind> files``: copy the members under ``prefixes`` out, by path, each with the digest and size
        ``export.json`` lists, and ``export.json`` with the digest that verified; none listed (nor of ``required``)
        is missing."""
        check = f"{self.kind} files"
        listed: dict[str, ListedFile] = {}
        copies: dict[str, Path] = {}
        with SafeArchiveReader(self.bundle, ReaderLimits()) as reader:
            for member in reader:
                name = member.name
                if name == MANIFEST:
                    if copy_member(member, self.work / MANIFEST)[0] != manifest_sha:
                        raise self.failed(check, IntegrityError("export.json changed since it was verified", path=name))
                    listed = {
                        f.path: f for f in ManifestReader(self.work / MANIFEST).files() if f.path.startswith(prefixes)
                    }
                elif name.startswith(prefixes):
                    entry = listed.get(name)
                    if entry is None:
                        raise self.failed(check, IntegrityError("not listed in export.json", path=name))
                    target = self.work / "files" / name.replace("/", "_")
                    if copy_member(member, target) != (entry.sha256, entry.size):
                        raise self.failed(check, IntegrityError("differs from the digest export.json lists", path=name))
                    copies[name] = target
        missing = sorted(set(listed) - set(copies)) + [p for p in required if p not in listed]
        if missing:
            raise self.failed(check, IntegrityError("missing from the bundle", path=missing[0]))
        self.passed(check, f"{len(copies)} {what} files match export.json")
        return copies

    def signed_manifest(
        self,
        files: dict[str, Path],
        names: tuple[str, str],
        payload_type: str,
        limit: int,
        *,
        unsigned: str,
        strict_type: bool,
    ) -> tuple[bytes, dict[str, Any], TrustedKey]:
        """(body, envelope, signer) of ``<kind> manifest``: the DSSE envelope ``names[1]`` carries exactly the
        manifest ``names[0]`` and is signed by the key that signed export.json.

        A wrong payload type is refused with the ``unsigned`` sentence, or its own with ``strict_type``.
        """
        check = f"{self.kind} manifest"
        name, envelope_name = names
        body = files[name].read_bytes()
        raw_envelope = files[envelope_name].read_bytes()
        if len(body) > limit or len(raw_envelope) > 2 * limit:
            raise self.failed(check, IntegrityError(f"oversized {self.kind} manifest", path=name))
        try:
            envelope = orjson.loads(raw_envelope)
            got_type = str(envelope["payloadType"])
            payload = base64.b64decode(envelope["payload"], validate=True)
            signatures = [base64.b64decode(s["sig"], validate=True) for s in envelope["signatures"]]
        except (orjson.JSONDecodeError, KeyError, TypeError, binascii.Error):
            raise self.failed(check, SignatureError("not a DSSE envelope", path=envelope_name)) from None
        if strict_type and got_type != payload_type:
            raise self.failed(
                check, SignatureError(f"payloadType {got_type!r} is not {payload_type}", path=envelope_name)
            )
        keyid = (self.report.signer or {}).get("keyid")
        signer = next((k for k in self.keys if k.keyid == keyid), None)
        if got_type != payload_type or signer is None or dsse_signer(got_type, payload, signatures, [signer]) is None:
            raise self.failed(check, SignatureError(unsigned, path=envelope_name))
        if payload != body:
            raise self.failed(check, IntegrityError(f"the DSSE envelope does not carry {name}", path=envelope_name))
        return body, envelope, signer

    def extract(self, data: bytes, *parts: str) -> Path:
        """Write ``data`` to ``extract_to/parts...`` (for import, once it verified)."""
        assert self.extract_to is not None
        target = self.extract_to.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return target
