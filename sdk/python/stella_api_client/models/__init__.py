"""Contains all the data models used in inputs/outputs"""

from .bootstrap_pack import BootstrapPack
from .bootstrap_pack_entries_item import BootstrapPackEntriesItem
from .bootstrap_pack_verification import BootstrapPackVerification
from .bootstrap_push import BootstrapPush
from .bootstrap_pushed import BootstrapPushed
from .bootstrap_pushed_pushed_item import BootstrapPushedPushedItem
from .distributed import Distributed
from .distributed_distribution import DistributedDistribution
from .distribution_create import DistributionCreate
from .distribution_create_object_lock_type_0 import DistributionCreateObjectLockType0
from .distribution_list import DistributionList
from .distribution_list_distributions_item import DistributionListDistributionsItem
from .event_evidence import EventEvidence
from .evidence import Evidence
from .evidence_check import EvidenceCheck
from .evidence_verify import EvidenceVerify
from .get_manifest_response_200 import GetManifestResponse200
from .get_provenance_response_200 import GetProvenanceResponse200
from .hold import Hold
from .hold_request import HoldRequest
from .kit_report import KitReport
from .kit_report_volumes_item import KitReportVolumesItem
from .kit_verify import KitVerify
from .profile import Profile
from .profile_create import ProfileCreate
from .profile_create_settings import ProfileCreateSettings
from .profile_list import ProfileList
from .profile_list_profiles_item import ProfileListProfilesItem
from .profile_patch import ProfilePatch
from .profile_patch_settings import ProfilePatchSettings
from .profile_update import ProfileUpdate
from .readiness import Readiness
from .readiness_checks import ReadinessChecks
from .run import Run
from .run_create import RunCreate
from .run_create_selectors import RunCreateSelectors
from .run_list import RunList
from .run_list_runs_item import RunListRunsItem
from .run_options import RunOptions
from .snapshot_create import SnapshotCreate
from .snapshot_create_kind import SnapshotCreateKind
from .timeline_event import TimelineEvent
from .timeline_page import TimelinePage
from .timeline_page_events_item import TimelinePageEventsItem
from .verify_report import VerifyReport
from .verify_report_checks_item import VerifyReportChecksItem
from .verify_run import VerifyRun

__all__ = (
    "BootstrapPack",
    "BootstrapPackEntriesItem",
    "BootstrapPackVerification",
    "BootstrapPush",
    "BootstrapPushed",
    "BootstrapPushedPushedItem",
    "Distributed",
    "DistributedDistribution",
    "DistributionCreate",
    "DistributionCreateObjectLockType0",
    "DistributionList",
    "DistributionListDistributionsItem",
    "EventEvidence",
    "Evidence",
    "EvidenceCheck",
    "EvidenceVerify",
    "GetManifestResponse200",
    "GetProvenanceResponse200",
    "Hold",
    "HoldRequest",
    "KitReport",
    "KitReportVolumesItem",
    "KitVerify",
    "Profile",
    "ProfileCreate",
    "ProfileCreateSettings",
    "ProfileList",
    "ProfileListProfilesItem",
    "ProfilePatch",
    "ProfilePatchSettings",
    "ProfileUpdate",
    "Readiness",
    "ReadinessChecks",
    "Run",
    "RunCreate",
    "RunCreateSelectors",
    "RunList",
    "RunListRunsItem",
    "RunOptions",
    "SnapshotCreate",
    "SnapshotCreateKind",
    "TimelineEvent",
    "TimelinePage",
    "TimelinePageEventsItem",
    "VerifyReport",
    "VerifyReportChecksItem",
    "VerifyRun",
)
