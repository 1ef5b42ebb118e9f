from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.verify_report_checks_item import VerifyReportChecksItem


T = TypeVar("T", bound="VerifyReport")


@_attrs_define
class VerifyReport:
    """
    Attributes:
        checks (list[VerifyReportChecksItem]):
        exit_code (int):
        verified (bool):
    """

    checks: list[VerifyReportChecksItem]
    exit_code: int
    verified: bool
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        checks = []
        for checks_item_data in self.checks:
            checks_item = checks_item_data.to_dict()
            checks.append(checks_item)

        exit_code = self.exit_code

        verified = self.verified

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "checks": checks,
                "exitCode": exit_code,
                "verified": verified,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.verify_report_checks_item import VerifyReportChecksItem  # noqa: PLC0415

        d = dict(src_dict)
        checks = []
        _checks = d.pop("checks")
        for checks_item_data in _checks:
            checks_item = VerifyReportChecksItem.from_dict(checks_item_data)

            checks.append(checks_item)

        exit_code = d.pop("exitCode")

        verified = d.pop("verified")

        verify_report = cls(
            checks=checks,
            exit_code=exit_code,
            verified=verified,
        )

        verify_report.additional_properties = d
        return verify_report

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
