"""The receiving side of mirror bundles, one function per thing a user does with a mirror directory.

``stella mirror import|status|verify|rollback|query``, the TUI's Mirror and receive screens call these and draw the
typed results: :func:`import_into_mirror` (verify a bundle, then swap it in: :mod:`services.mirror_import`),
:func:`status` (:class:`MirrorStatus`), :func:`receipt_history`, :func:`verify_current` (the trust checks of
:mod:`verify.mirror` against the state in place), :func:`rollback` and :func:`query_mirror`. The directory's layout,
lock and recovery are :mod:`services.mirror_dir`'s.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from tuf.api.metadata import Metadata

from core.age_stream import read_identities
from core.clock import utcnow
from core.errors import BadInputError, NotFoundError, StellaError, TrustMetadataError, UsageError
from core.home import Home
from core.keys import KeyAlgorithm, KeyStore, read_passphrase_file
from core.mirror_layout import IndexedDocument, load_state, query, read_document
from core.progress import Check, NullObserver, Observer
from core.signing import Signer
from services.mirror_dir import MirrorDir
from services.mirror_import import DEFAULT_MIN_FREE, ImportResult, import_bundle
from services.trust import trusted_keys
from verify.mirror import MirrorVerification, verify_state

#: The TUF roles whose versions and expiry a status shows, in this order.
TUF_ROLES = ("root", "timestamp", "snapshot", "targets")


# -- import ------------------------------------------------------------------------------------------------
#: The key a receiver signs import receipts with when no ``--receipt-key`` is given: made on first use.
RECEIPT_KEY = "receipt"


@dataclass(frozen=True)
class ReceiptKey:
    """The key that signs an import's receipt: its key-store name, and whether this import created it."""

    name: str
    created: bool

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "created": self.created}


def receipt_key_for(home: Home, name: str | None) -> ReceiptKey:
    """The key-store key that signs an import receipt.

    ``name`` when given; else the key named :data:`RECEIPT_KEY`; else the home's only key; else, in a home without
    keys, a new ECDSA P-256 key named :data:`RECEIPT_KEY` (so a fresh receiver imports with no key setup; the
    surfaces say it was made and how to give its public key to the sender). A home with several keys, none of them
    :data:`RECEIPT_KEY`, has to say which one signs.
    """
    store = KeyStore(home)
    created = False
    if name is None:
        keys = store.list()
        names = [k.name for k in keys]
        if RECEIPT_KEY in names:
            name = RECEIPT_KEY
        elif len(keys) == 1:
            name = keys[0].name
        elif not keys:
            store.generate(RECEIPT_KEY, KeyAlgorithm.ECDSA_P256)
            name, created = RECEIPT_KEY, True
        else:
            raise UsageError(
                f"choose the key that signs the import receipt: this home has {len(keys)} keys ({', '.join(names)})",
                hint=f"give --receipt-key NAME, or generate one named {RECEIPT_KEY!r}: "
                f"stella keys generate {RECEIPT_KEY}",
            )
    return ReceiptKey(name, created)


def receipt_key_note(key: ReceiptKey) -> str:
    """What the surfaces say on a mirror's first import, or when the import made the receipt key: which key signs
    the receipts, and how the sender comes to trust it (it needs that to accept a receipt as a delta's base)."""
    said = (
        f"created key {key.name!r} in this home's key store to sign import receipts"
        if key.created
        else f"import receipts are signed by key {key.name!r}"
    )
    return (
        f"{said}; give the sender its public key (stella keys export-public {key.name} --out receiver.pub), who "
        "trusts it for receipts only with: stella trust add receiver receiver.pub --receipts-only"
    )


def receipt_signer(home: Home, name: str | None) -> Signer:
    """The signer of :func:`receipt_key_for`'s key."""
    return Signer.from_keystore(KeyStore(home), receipt_key_for(home, name).name)


def import_into_mirror(
    home: Home,
    bundle: Path,
    into: Path,
    *,
    key_files: Sequence[Path] = (),
    receipt_key: str | None = None,
    trust_root: Path | None = None,
    identity_files: Sequence[Path] = (),
    passphrase_file: Path | None = None,
    at: datetime | None = None,
    min_free: int = DEFAULT_MIN_FREE,
    observer: Observer | None = None,
    receipt_out: Path | None = None,
) -> ImportResult:
    """Verify ``bundle`` and make it the current state of the mirror at ``into`` (`stella mirror import`).

    The inputs are read in this order, so the first bad one is reported: trusted signer keys (``key_files``, else
    the home's trust store), the key that signs the receipt (:func:`receipt_key_for`: ``receipt_key``, else the key
    named ``receipt``, else the home's only key, else a new ``receipt`` key; the result names it), the TUF
    root for a first import, age identity files or a passphrase file for an encrypted payload. ``at`` is the time
    expiry is evaluated at; ``min_free`` the bytes to keep free. ``observer`` hears each check and may cancel, as
    for :func:`services.mirror_import.import_bundle`, which does the work; ``receipt_out`` gets a copy of the receipt,
    written before the swap.
    """
    keys = trusted_keys(home, key_files)
    used_key = receipt_key_for(home, receipt_key)
    signer = Signer.from_keystore(KeyStore(home), used_key.name)
    root = None
    if trust_root is not None:
        try:
            root = trust_root.read_bytes()
        except OSError as exc:
            raise BadInputError(f"cannot read the TUF root: {exc.strerror}", path=str(trust_root)) from None
    identities = [i for path in identity_files for i in read_identities(path)]
    passphrase = read_passphrase_file(passphrase_file).decode() if passphrase_file else None
    result = import_bundle(
        bundle,
        into,
        keys=keys,
        signer=signer,
        trust_root=root,
        identities=identities,
        passphrase=passphrase,
        at=at,
        min_free=min_free,
        observer=observer,
        receipt_out=receipt_out,
    )
    # Said when the key was made, and on a mirror's first import (a key made by an earlier, failed attempt included).
    note = receipt_key_note(used_key) if used_key.created or result.previous_digest is None else None
    return replace(result, receipt_key=used_key.name, receipt_key_created=used_key.created, receipt_key_note=note)


# -- status ------------------------------------------------------------------------------------------------
def _text(when: datetime) -> str:
    return when.isoformat() + "Z"


@dataclass(frozen=True)
class StateSummary:
    """One state of a mirror directory (current or previous), as `stella mirror status` shows it."""

    state_digest: str
    sequence: int
    base: str | None
    tenant: str
    run_id: str
    created_at: str
    counts: Mapping[str, int]
    files: int
    path: Path

    @classmethod
    def of(cls, state_dir: Path) -> StateSummary:
        tree = state_dir / "tree"
        state = load_state(tree)
        return cls(
            state.digest,
            state.sequence,
            state.base,
            state.tenant,
            state.run_id,
            state.created_at,
            dict(state.counts),
            len(state.files) + 1,
            tree,
        )

    @property
    def documents(self) -> int:
        return self.counts.get("documents", 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stateDigest": self.state_digest,
            "sequence": self.sequence,
            "base": self.base,
            "tenant": self.tenant,
            "runId": self.run_id,
            "createdAt": self.created_at,
            "counts": dict(self.counts),
            "files": self.files,
            "path": str(self.path),
        }


@dataclass(frozen=True)
class RoleInfo:
    """A TUF role the current state trusts: its version and when it expires (naive UTC)."""

    version: int
    expires: datetime

    @classmethod
    def read(cls, path: Path) -> RoleInfo | None:
        if not path.is_file():
            return None
        md: Metadata[Any] = Metadata.from_bytes(path.read_bytes())
        return cls(md.signed.version, md.signed.expires.astimezone(UTC).replace(tzinfo=None))

    @property
    def expires_text(self) -> str:
        return _text(self.expires)

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "expires": self.expires_text}


@dataclass(frozen=True)
class LastImport:
    """The current state's import receipt: where it is, when the import ran and which bundle it took."""

    receipt: Path
    imported_at: str | None
    bundle: Mapping[str, Any] | None

    @property
    def bundle_name(self) -> str:
        return str((self.bundle or {}).get("name", ""))

    def to_dict(self) -> dict[str, Any]:
        bundle = dict(self.bundle) if self.bundle is not None else None
        return {"receipt": str(self.receipt), "importedAt": self.imported_at, "bundle": bundle}


@dataclass(frozen=True)
class MirrorStatus:
    """A mirror directory at time ``at``: its current and previous states, the TUF roles the current state trusts
    (``tuf``: every role of :data:`TUF_ROLES`, None for one missing; empty for an empty mirror), its last import
    and how many bundles are quarantined. ``to_dict`` is `stella mirror status --json`."""

    mirror: Path
    current: StateSummary | None
    previous: StateSummary | None
    quarantined: int
    at: datetime
    tuf: Mapping[str, RoleInfo | None]
    last_import: LastImport | None

    @property
    def at_text(self) -> str:
        return _text(self.at)

    @property
    def expired(self) -> list[str]:
        """The roles expired at ``at``, sorted."""
        return sorted(role for role, info in self.tuf.items() if info is not None and info.expires <= self.at)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "mirror": str(self.mirror),
            "current": self.current.to_dict() if self.current is not None else None,
            "previous": self.previous.to_dict() if self.previous is not None else None,
            "quarantined": self.quarantined,
            "at": self.at_text,
        }
        if self.current is None:
            return body
        body["tuf"] = {role: info.to_dict() if info is not None else None for role, info in self.tuf.items()}
        body["expired"] = self.expired
        if self.last_import is not None:
            body["lastImport"] = self.last_import.to_dict()
        return body


def _payload(envelope_bytes: bytes) -> Any:
    return orjson.loads(base64.b64decode(orjson.loads(envelope_bytes)["payload"]))


def status(into: Path, *, at: datetime | None = None) -> MirrorStatus:
    """The mirror's current state, previous state, TUF versions and expiry at ``at`` (default now), last import
    and quarantine count (`stella mirror status`)."""
    mirror = MirrorDir(into)
    if not into.is_dir():
        raise UsageError("no such mirror directory", path=str(into))
    current, previous = mirror.current(), mirror.previous()
    when = (at or utcnow()).replace(microsecond=0)
    summary = StateSummary.of(current) if current is not None else None
    roles: dict[str, RoleInfo | None] = {}
    last = None
    if current is not None:
        roles = {role: RoleInfo.read(current / "meta" / "tuf" / f"{role}.json") for role in TUF_ROLES}
        receipt_path = current / "meta" / "receipt.json"
        if receipt_path.is_file():
            receipt = _payload(receipt_path.read_bytes())
            last = LastImport(receipt_path, receipt.get("importedAt"), receipt.get("bundle"))
    return MirrorStatus(
        mirror=into,
        current=summary,
        previous=StateSummary.of(previous) if previous is not None and previous != current else None,
        quarantined=mirror.quarantined(),
        at=when,
        tuf=roles,
        last_import=last,
    )


@dataclass(frozen=True)
class ReceiptRecord:
    """One import receipt the mirror kept in ``receipts/`` (read unchecked: the mirror signed it itself)."""

    path: Path
    imported_at: str
    sequence: int | None
    state_digest: str
    bundle_name: str


def receipt_history(into: Path) -> list[ReceiptRecord]:
    """Every import receipt the mirror kept, newest first; a file that is not a readable receipt is left out."""
    folder = MirrorDir(into).receipts
    if not folder.is_dir():
        return []
    out: list[ReceiptRecord] = []
    for path in sorted(folder.glob("*.json"), reverse=True):
        try:
            body = _payload(path.read_bytes())
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(body, dict):
            sequence = body.get("sequence")
            out.append(
                ReceiptRecord(
                    path,
                    str(body.get("importedAt", "")),
                    sequence if isinstance(sequence, int) else None,
                    str(body.get("stateDigest", "")),
                    str((body.get("bundle") or {}).get("name", "")),
                )
            )
    return out


# -- verify, rollback, query -------------------------------------------------------------------------------
def verify_current(into: Path, *, at: datetime | None = None, observer: Observer | None = None) -> MirrorVerification:
    """Verify the mirror's current state afresh from the TUF root its import trusted (`stella mirror verify`).

    ``observer`` hears each check as it completes (``root``, then :func:`verify.mirror.verify_state`'s ``tuf`` and
    ``state``), a failed one included, before its error is raised."""
    report = observer or NullObserver()

    def failed(name: str, error: StellaError) -> StellaError:
        report.check(Check(name, False, error.message, error.path))
        return error

    current = MirrorDir(into).current()
    if current is None:
        raise failed("state", UsageError("the mirror is empty: nothing to verify", path=str(into)))
    root_path = current / "meta" / "tuf" / "root.json"
    try:
        root = root_path.read_bytes()
    except OSError as exc:
        raise failed(
            "root",
            TrustMetadataError(f"the mirror's trusted TUF root is unreadable: {exc.strerror}", path=str(root_path)),
        ) from None
    report.check(Check("root", True, f"the TUF root this state's import trusted ({len(root)} bytes)"))
    return verify_state(current / "tree", root, at=at, observer=report)


@dataclass(frozen=True)
class Rollback:
    """A rollback: the state now current and the one it replaced (now previous)."""

    state_digest: str
    sequence: int
    previous_state_digest: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "stateDigest": self.state_digest,
            "sequence": self.sequence,
            "previousStateDigest": self.previous_state_digest,
        }


@dataclass(frozen=True)
class RollbackPlan:
    """What a rollback would do: ``target`` (the previous state) becomes current, ``current`` becomes previous."""

    current: StateSummary
    target: StateSummary

    @property
    def text(self) -> str:
        """The two states, as the surfaces show them before asking."""

        def line(s: StateSummary) -> str:
            return (
                f"state {s.state_digest[:12]} (sequence {s.sequence}, created {s.created_at}, {s.documents} documents)"
            )

        return f"current: {line(self.current)}\nrollback makes current: {line(self.target)}"

    def to_dict(self) -> dict[str, Any]:
        return {"current": self.current.to_dict(), "target": self.target.to_dict()}


def _rollback_states(mirror: MirrorDir, into: Path) -> tuple[Path, Path]:
    current, previous = mirror.current(), mirror.previous()
    if previous is None or current is None or previous.resolve() == current.resolve():
        raise UsageError("this mirror has no previous state to roll back to", path=str(into))
    return current, previous


def rollback_plan(into: Path) -> RollbackPlan:
    """The state a rollback would make current, and the one it would replace; nothing changes."""
    if not into.is_dir():
        raise UsageError("no such mirror directory", path=str(into))
    current, previous = _rollback_states(MirrorDir(into), into)
    return RollbackPlan(StateSummary.of(current), StateSummary.of(previous))


def rollback(into: Path, *, expect: str | None = None) -> Rollback:
    """Make the previous state current again, and the current one previous (`stella mirror rollback`).

    ``expect`` is the state digest the user confirmed as the target (:func:`rollback_plan`); when the mirror's
    previous state is another one by the time the lock is held (an import ran in between), nothing changes and
    a usage error says so."""
    mirror = MirrorDir(into)
    with mirror.locked():
        current, previous = _rollback_states(mirror, into)
        now, before = load_state(previous / "tree"), load_state(current / "tree")
        if expect is not None and now.digest != expect:
            raise UsageError(
                f"the mirror's previous state is now {now.digest[:12]}, not the {expect[:12]} confirmed: "
                "nothing was changed",
                path=str(into),
                hint="run the rollback again to see its target",
            )
        mirror.point(mirror.current_link, previous)
        mirror.point(mirror.previous_link, current)
        return Rollback(now.digest, now.sequence, before.digest)


@dataclass(frozen=True)
class MirrorQuery:
    """The documents of the current state that a query matched, and the tree they are read from."""

    tree: Path
    documents: tuple[IndexedDocument, ...]

    def read(self, document: IndexedDocument) -> bytes:
        """A document's bytes, checked against its digest."""
        return read_document(self.tree, document)


def query_mirror(
    mirror: Path, *, document_id: str | None = None, purl: str | None = None, subject: str | None = None
) -> MirrorQuery:
    """The current state's documents matching every key given (`stella mirror query`): an advisory or document id,
    a package purl (with or without ``@version``), an SBOM subject. At least one is needed."""
    if not (document_id or purl or subject):
        raise UsageError("give --id, --purl or --subject")
    current = MirrorDir(mirror).current()
    if current is None:
        raise NotFoundError("the mirror is empty", path=str(mirror))
    tree = current / "tree"
    return MirrorQuery(tree, tuple(query(tree, document_id=document_id, purl=purl, subject=subject)))
