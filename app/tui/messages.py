"""The TUI's messages: what a thread worker posts to its screen, as dataclasses in one place.

A worker never touches widgets; it posts one of these and the screen's ``on_<name>`` handler draws it on the
event loop. Progress and checks come from :class:`app.tui.progress.MessageObserver`, which coalesces progress.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.message import Message

from core.progress import Check

if TYPE_CHECKING:
    from app.tui.screens.dashboard import DashboardData
    from core.custody import CustodyEvent
    from core.evidence_store import EvidenceBundle, Hold
    from core.ingest import FileResult, ImportSummary
    from core.keys import KeyInfo
    from core.kit_plan import KitPlan
    from core.mirror_layout import IndexedDocument
    from core.profiles import Profile
    from core.runs import ExportRun, RunEvent
    from core.trust import TrustedKey
    from services.data import DataPage
    from services.evidence import EvidenceDetail
    from services.export import ExportPlan
    from services.kit import AssembledKit
    from services.mirror import MirrorStatus, ReceiptRecord
    from services.receive import Outcome as ReceiveOutcome
    from services.receive import Receivable
    from services.timeline import EventEvidence, TimelinePage
    from services.tuf import TufStatus
    from verify.bundle import VerifyReport
    from verify.evidence import EvidenceReport
    from verify.kit import KitReport
    from verify.mirror import MirrorVerification


@dataclass
class PhaseStarted(Message):
    """A phase of long work began, with ``total`` units if known."""

    phase: str
    total: int | None = None


@dataclass
class ProgressAdvanced(Message):
    """``units`` more are done since the last message (several advances coalesced); ``detail`` is the latest one
    given, if any (the file being read, say)."""

    units: int
    detail: str | None = None


@dataclass
class PhaseFinished(Message):
    """The phase is over."""

    phase: str


@dataclass
class CheckCompleted(Message):
    """A verification check completed, passed or failed."""

    check: Check


@dataclass
class DashboardLoaded(Message):
    """The dashboard's figures, read from the home and the store by its worker."""

    data: DashboardData


# -- import ----------------------------------------------------------------------------------------------------


@dataclass
class FileImported(Message):
    """One file's import result, as `stella import` reports it."""

    result: FileResult


@dataclass
class ImportFinished(Message):
    """The import ended: with a summary, or cancelled (``cancelled`` holds the error's sentence)."""

    summary: ImportSummary | None
    cancelled: str | None = None


# -- data ------------------------------------------------------------------------------------------------------


@dataclass
class PageRead(Message):
    """One page of a listing (`stella data list`)."""

    page: DataPage


@dataclass
class Shown(Message):
    """Text to show in a dialog: a record (`stella data show`) or the store's counts."""

    title: str
    text: str


# -- export wizard and run -------------------------------------------------------------------------------------


@dataclass
class WizardProfilesRead(Message):
    """The export wizard's choices: the tenant's profiles and the signing keys."""

    tenant: str
    profiles: list[Profile]
    keys: list[KeyInfo]


@dataclass
class InputsCounted(Message):
    """The live count for ``text`` (the selector field as it was): per record type, or the error's sentence."""

    text: str
    plan: ExportPlan | None
    error: str | None = None


@dataclass
class RunPlanned(Message):
    """The run is planned (its inputs pinned); the build starts."""

    export_run: ExportRun


@dataclass
class RunEnded(Message):
    """The run finished (``export_run``), was cancelled (``cancelled`` holds the sentence), or failed (both None)."""

    export_run: ExportRun | None
    cancelled: str | None = None
    shipped: str = ""  # what the bundle ships, in words (a delta: added and removed, not its whole state)


@dataclass
class CheckPassed(Message):
    """A check of the verification that follows a build."""

    check: Check


@dataclass
class RunVerified(Message):
    """The built bundle verified, and its provenance in words."""

    report: VerifyReport
    provenance: str


# -- runs ------------------------------------------------------------------------------------------------------


@dataclass
class RunsLoaded(Message):
    """The tenant's export runs."""

    tenant: str
    runs: list[ExportRun]


@dataclass
class EventsLoaded(Message):
    """One run and its events."""

    run: ExportRun
    events: list[RunEvent]


@dataclass
class RunCancelled(Message):
    """A run was cancelled: the CLI's sentence for it."""

    text: str


# -- profiles --------------------------------------------------------------------------------------------------


@dataclass
class ProfilesRead(Message):
    """The tenant's profiles (the Profiles screen)."""

    tenant: str
    profiles: list[Profile]


@dataclass
class RevisionsRead(Message):
    """Every revision of one profile."""

    revisions: list[Profile]


@dataclass
class ProfileSaved(Message):
    """A profile revision was saved: the CLI's sentence for it."""

    profile: Profile
    text: str


# -- verify and receive ----------------------------------------------------------------------------------------


@dataclass
class VerifyCancelled(Message):
    """The user cancelled the verification (ctrl+x); ``sentence`` is the core's."""

    sentence: str


@dataclass
class VerifyInspected(Message):
    """What the bundle's manifest claims, read before verifying (`stella inspect`): one line, said unverified."""

    text: str


@dataclass
class VerifyDone(Message):
    """The verification ended: the report, how the bundle can be received, the trust chain and the key used."""

    report: VerifyReport
    receivable: Receivable[Any, Any] | None
    chain: str
    key: Path | None


@dataclass
class ReceiveDone(Message):
    """The worker ended: with what it did, or (``outcome`` None) with a failure whose sentence is in a dialog."""

    outcome: ReceiveOutcome | None
    failure: str = ""


# -- keys ------------------------------------------------------------------------------------------------------


@dataclass
class KeysLoaded(Message):
    """The signing keys, the trusted keys and the TUF repository's status, read at ``now``."""

    keys: list[KeyInfo]
    trusted: list[TrustedKey]
    tuf: TufStatus | None
    now: datetime


@dataclass
class KeysChanged(Message):
    """A key was generated, exported, trusted or removed: the CLI's sentence for it."""

    text: str


# -- mirror ----------------------------------------------------------------------------------------------------


@dataclass
class MirrorStatusLoaded(Message):
    """A mirror directory's state, its receipts and what the directory is (``layout``)."""

    mirror: Path
    status: MirrorStatus
    receipts: list[ReceiptRecord]
    layout: str


@dataclass
class MirrorCheckDone(Message):
    """One check of `stella mirror verify` completed (posted from the worker thread)."""

    check: Check


@dataclass
class MirrorVerified(Message):
    """`stella mirror verify` ended."""

    verified: MirrorVerification


@dataclass
class MirrorChanged(Message):
    """A rollback happened: the CLI's sentence for it."""

    text: str


@dataclass
class MirrorQueried(Message):
    """The documents a mirror query found."""

    hits: list[IndexedDocument]


# -- timeline --------------------------------------------------------------------------------------------------


@dataclass
class TimelinePageLoaded(Message):
    """A page of the tenant's timeline; ``append``: the next page of the one shown, else a new listing."""

    page: TimelinePage
    append: bool


@dataclass
class TimelineEvidenceLoaded(Message):
    """The signed references of one event (`stella timeline evidence`); ``open_locker``: open the Evidence screen on
    the sealed evidence they name instead of showing them."""

    refs: EventEvidence
    open_locker: bool = False


# -- offline kit -----------------------------------------------------------------------------------------------


@dataclass
class KitRunsLoaded(Message):
    """The tenant's finished runs whose bundle is still on disk."""

    runs: list[ExportRun]


@dataclass
class KitPlanned(Message):
    """The layout of the picked runs on the chosen medium."""

    plan: KitPlan


@dataclass
class KitAssembled(Message):
    """An assembled kit, or (``kit`` None) why not: a cancel's sentence."""

    kit: AssembledKit | None
    sentence: str = ""


@dataclass
class KitVolumeVerified(Message):
    """The verdict on a volume."""

    report: KitReport


@dataclass
class EvidenceListed(Message):
    """The tenant's evidence bundles, newest first, each with its active holds."""

    tenant: str
    items: list[tuple[EvidenceBundle, list[Hold]]]


@dataclass
class EvidenceShown(Message):
    """One bundle (its artifacts and holds) and the tail of its chain of custody."""

    detail: EvidenceDetail
    custody: list[CustodyEvent]


@dataclass
class EvidenceVerified(Message):
    """The sealed-bundle verification of a locker bundle ended (its checks came as :class:`CheckCompleted`)."""

    bundle: EvidenceBundle
    report: EvidenceReport


@dataclass
class EvidenceChanged(Message):
    """A hold placed or released, or an export written: what to say; the list is read again."""

    text: str


@dataclass
class DistributionEnded(Message):
    """A distribution from the run screen ended: ``text`` says where the copy is (reference and digests, or the S3
    location), or it was cancelled (``cancelled`` holds the sentence), or it failed (both empty: a modal says why)."""

    text: str = ""
    cancelled: str | None = None
