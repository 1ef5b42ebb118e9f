"""Contains all the data models used in inputs/outputs"""

from .cancel_run_api_v1_export_runs_run_id_cancel_post_response_cancel_run_api_v1_export_runs_run_id_cancel_post import (
    CancelRunApiV1ExportRunsRunIdCancelPostResponseCancelRunApiV1ExportRunsRunIdCancelPost,
)
from .create_profile_api_v1_export_profiles_post_response_create_profile_api_v1_export_profiles_post import (
    CreateProfileApiV1ExportProfilesPostResponseCreateProfileApiV1ExportProfilesPost,
)
from .get_profile_api_v1_export_profiles_profile_id_get_response_get_profile_api_v1_export_profiles_profile_id_get import (
    GetProfileApiV1ExportProfilesProfileIdGetResponseGetProfileApiV1ExportProfilesProfileIdGet,
)
from .get_run_api_v1_export_runs_run_id_get_response_get_run_api_v1_export_runs_run_id_get import (
    GetRunApiV1ExportRunsRunIdGetResponseGetRunApiV1ExportRunsRunIdGet,
)
from .list_profiles_api_v1_export_profiles_get_response_list_profiles_api_v1_export_profiles_get import (
    ListProfilesApiV1ExportProfilesGetResponseListProfilesApiV1ExportProfilesGet,
)
from .list_runs_api_v1_export_runs_get_response_list_runs_api_v1_export_runs_get import (
    ListRunsApiV1ExportRunsGetResponseListRunsApiV1ExportRunsGet,
)
from .profile_create import ProfileCreate
from .profile_create_settings import ProfileCreateSettings
from .profile_patch import ProfilePatch
from .profile_patch_settings import ProfilePatchSettings
from .run_create import RunCreate
from .run_create_selectors import RunCreateSelectors
from .run_options import RunOptions
from .update_profile_api_v1_export_profiles_profile_id_patch_response_update_profile_api_v1_export_profiles_profile_id_patch import (
    UpdateProfileApiV1ExportProfilesProfileIdPatchResponseUpdateProfileApiV1ExportProfilesProfileIdPatch,
)

__all__ = (
    "CancelRunApiV1ExportRunsRunIdCancelPostResponseCancelRunApiV1ExportRunsRunIdCancelPost",
    "CreateProfileApiV1ExportProfilesPostResponseCreateProfileApiV1ExportProfilesPost",
    "GetProfileApiV1ExportProfilesProfileIdGetResponseGetProfileApiV1ExportProfilesProfileIdGet",
    "GetRunApiV1ExportRunsRunIdGetResponseGetRunApiV1ExportRunsRunIdGet",
    "ListProfilesApiV1ExportProfilesGetResponseListProfilesApiV1ExportProfilesGet",
    "ListRunsApiV1ExportRunsGetResponseListRunsApiV1ExportRunsGet",
    "ProfileCreate",
    "ProfileCreateSettings",
    "ProfilePatch",
    "ProfilePatchSettings",
    "RunCreate",
    "RunCreateSelectors",
    "RunOptions",
    "UpdateProfileApiV1ExportProfilesProfileIdPatchResponseUpdateProfileApiV1ExportProfilesProfileIdPatch",
)
