from http import HTTPStatus
from typing import Any, cast

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.evidence import Evidence
from ...models.snapshot_create import SnapshotCreate
from ...types import Response


def _get_kwargs(
    *,
    body: SnapshotCreate,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/api/v1/evidence/snapshot",
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Any | Evidence | None:
    if response.status_code == 201:
        response_201 = Evidence.from_dict(response.json())

        return response_201

    if response.status_code == 400:
        response_400 = cast(Any, None)
        return response_400

    if response.status_code == 401:
        response_401 = cast(Any, None)
        return response_401

    if response.status_code == 403:
        response_403 = cast(Any, None)
        return response_403

    if response.status_code == 404:
        response_404 = cast(Any, None)
        return response_404

    if response.status_code == 422:
        response_422 = cast(Any, None)
        return response_422

    if response.status_code == 503:
        response_503 = cast(Any, None)
        return response_503

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[Any | Evidence]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    body: SnapshotCreate,
) -> Response[Any | Evidence]:
    """Evidence Snapshot

     Seal a snapshot of a run, policy evaluation or job into the locker (`stella evidence snapshot KIND
    REF
    --key KEY`); scope ``evidence:hold``, the scope that writes to the locker.

    Args:
        body (SnapshotCreate):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | Evidence]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    body: SnapshotCreate,
) -> Any | Evidence | None:
    """Evidence Snapshot

     Seal a snapshot of a run, policy evaluation or job into the locker (`stella evidence snapshot KIND
    REF
    --key KEY`); scope ``evidence:hold``, the scope that writes to the locker.

    Args:
        body (SnapshotCreate):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | Evidence
    """

    return sync_detailed(
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    body: SnapshotCreate,
) -> Response[Any | Evidence]:
    """Evidence Snapshot

     Seal a snapshot of a run, policy evaluation or job into the locker (`stella evidence snapshot KIND
    REF
    --key KEY`); scope ``evidence:hold``, the scope that writes to the locker.

    Args:
        body (SnapshotCreate):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | Evidence]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    body: SnapshotCreate,
) -> Any | Evidence | None:
    """Evidence Snapshot

     Seal a snapshot of a run, policy evaluation or job into the locker (`stella evidence snapshot KIND
    REF
    --key KEY`); scope ``evidence:hold``, the scope that writes to the locker.

    Args:
        body (SnapshotCreate):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | Evidence
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
        )
    ).parsed
