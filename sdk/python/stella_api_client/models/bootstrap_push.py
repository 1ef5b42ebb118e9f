from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="BootstrapPush")


@_attrs_define
class BootstrapPush:
    """
    Attributes:
        registry (str): HOST[/PREFIX] (or oci://HOST[/PREFIX]): where every image and chart of the pack goes, by digest
        plain_http (bool | Unset): HTTP without TLS, only for a registry on 127.0.0.1/::1/localhost Default: False.
    """

    registry: str
    plain_http: bool | Unset = False

    def to_dict(self) -> dict[str, Any]:
        registry = self.registry

        plain_http = self.plain_http

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "registry": registry,
            }
        )
        if plain_http is not UNSET:
            field_dict["plainHttp"] = plain_http

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        registry = d.pop("registry")

        plain_http = d.pop("plainHttp", UNSET)

        bootstrap_push = cls(
            registry=registry,
            plain_http=plain_http,
        )

        return bootstrap_push
