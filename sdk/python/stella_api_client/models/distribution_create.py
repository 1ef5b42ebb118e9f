from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

from ..models.distribution_create_object_lock_type_0 import DistributionCreateObjectLockType0
from ..types import UNSET, Unset

T = TypeVar("T", bound="DistributionCreate")


@_attrs_define
class DistributionCreate:
    """Where to hand a succeeded run's bundle, and how (the options of `stella distribute`, credentials excepted).

    Attributes:
        to (str): an absolute directory on the server host, oci://HOST[/TENANT/NAME][:TAG], or s3://BUCKET/PREFIX
        chunk_size (int | None | Unset): oci:// and s3://: upload chunk size in bytes (default 8 MiB); for s3:// the
            part size (5 MiB min)
        endpoint_url (None | str | Unset): s3:// only: an S3-compatible store (https; http on loopback only)
        legal_hold (bool | Unset): s3:// only: put a legal hold on the stored object Default: False.
        object_lock (DistributionCreateObjectLockType0 | None | Unset): s3:// only: Object Lock retention mode
        path_style (bool | Unset): s3:// only: path-style addressing (URL/BUCKET/KEY) Default: False.
        plain_http (bool | Unset): oci:// only: HTTP without TLS, only for a registry on 127.0.0.1/::1/localhost
            Default: False.
        retain_until (None | str | Unset): s3:// only: retention end, RFC 3339 (with objectLock)
    """

    to: str
    chunk_size: int | None | Unset = UNSET
    endpoint_url: None | str | Unset = UNSET
    legal_hold: bool | Unset = False
    object_lock: DistributionCreateObjectLockType0 | None | Unset = UNSET
    path_style: bool | Unset = False
    plain_http: bool | Unset = False
    retain_until: None | str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        to = self.to

        chunk_size: int | None | Unset
        if isinstance(self.chunk_size, Unset):
            chunk_size = UNSET
        else:
            chunk_size = self.chunk_size

        endpoint_url: None | str | Unset
        if isinstance(self.endpoint_url, Unset):
            endpoint_url = UNSET
        else:
            endpoint_url = self.endpoint_url

        legal_hold = self.legal_hold

        object_lock: None | str | Unset
        if isinstance(self.object_lock, Unset):
            object_lock = UNSET
        elif isinstance(self.object_lock, DistributionCreateObjectLockType0):
            object_lock = self.object_lock.value
        else:
            object_lock = self.object_lock

        path_style = self.path_style

        plain_http = self.plain_http

        retain_until: None | str | Unset
        if isinstance(self.retain_until, Unset):
            retain_until = UNSET
        else:
            retain_until = self.retain_until

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "to": to,
            }
        )
        if chunk_size is not UNSET:
            field_dict["chunkSize"] = chunk_size
        if endpoint_url is not UNSET:
            field_dict["endpointUrl"] = endpoint_url
        if legal_hold is not UNSET:
            field_dict["legalHold"] = legal_hold
        if object_lock is not UNSET:
            field_dict["objectLock"] = object_lock
        if path_style is not UNSET:
            field_dict["pathStyle"] = path_style
        if plain_http is not UNSET:
            field_dict["plainHttp"] = plain_http
        if retain_until is not UNSET:
            field_dict["retainUntil"] = retain_until

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        to = d.pop("to")

        def _parse_chunk_size(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        chunk_size = _parse_chunk_size(d.pop("chunkSize", UNSET))

        def _parse_endpoint_url(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        endpoint_url = _parse_endpoint_url(d.pop("endpointUrl", UNSET))

        legal_hold = d.pop("legalHold", UNSET)

        def _parse_object_lock(data: object) -> DistributionCreateObjectLockType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                object_lock_type_0 = DistributionCreateObjectLockType0(data)

                return object_lock_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(DistributionCreateObjectLockType0 | None | Unset, data)

        object_lock = _parse_object_lock(d.pop("objectLock", UNSET))

        path_style = d.pop("pathStyle", UNSET)

        plain_http = d.pop("plainHttp", UNSET)

        def _parse_retain_until(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        retain_until = _parse_retain_until(d.pop("retainUntil", UNSET))

        distribution_create = cls(
            to=to,
            chunk_size=chunk_size,
            endpoint_url=endpoint_url,
            legal_hold=legal_hold,
            object_lock=object_lock,
            path_style=path_style,
            plain_http=plain_http,
            retain_until=retain_until,
        )

        return distribution_create
