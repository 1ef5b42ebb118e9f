from http import HTTPStatus
from typing import Any, cast

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.timeline_page import TimelinePage
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    type_: list[str] | None | Unset = UNSET,
    run: None | str | Unset = UNSET,
    case: None | str | Unset = UNSET,
    after: int | Unset = 0,
    limit: int | Unset = 50,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    json_type_: list[str] | None | Unset
    if isinstance(type_, Unset):
        json_type_ = UNSET
    elif isinstance(type_, list):
        json_type_ = type_

    else:
        json_type_ = type_
    params["type"] = json_type_

    json_run: None | str | Unset
    if isinstance(run, Unset):
        json_run = UNSET
    else:
        json_run = run
    params["run"] = json_run

    json_case: None | str | Unset
    if isinstance(case, Unset):
        json_case = UNSET
    else:
        json_case = case
    params["case"] = json_case

    params["after"] = after

    params["limit"] = limit

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/api/v1/timeline",
        "params": params,
    }

    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Any | TimelinePage | None:
    if response.status_code == 200:
        response_200 = TimelinePage.from_dict(response.json())

        return response_200

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


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[Any | TimelinePage]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    type_: list[str] | None | Unset = UNSET,
    run: None | str | Unset = UNSET,
    case: None | str | Unset = UNSET,
    after: int | Unset = 0,
    limit: int | Unset = 50,
) -> Response[Any | TimelinePage]:
    """Timeline List

     The tenant's events, oldest first, ``limit`` at a time after cursor ``after`` (`stella timeline
    list`).

    Args:
        type_ (list[str] | None | Unset):
        run (None | str | Unset):
        case (None | str | Unset):
        after (int | Unset):  Default: 0.
        limit (int | Unset):  Default: 50.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | TimelinePage]
    """

    kwargs = _get_kwargs(
        type_=type_,
        run=run,
        case=case,
        after=after,
        limit=limit,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    type_: list[str] | None | Unset = UNSET,
    run: None | str | Unset = UNSET,
    case: None | str | Unset = UNSET,
    after: int | Unset = 0,
    limit: int | Unset = 50,
) -> Any | TimelinePage | None:
    """Timeline List

     The tenant's events, oldest first, ``limit`` at a time after cursor ``after`` (`stella timeline
    list`).

    Args:
        type_ (list[str] | None | Unset):
        run (None | str | Unset):
        case (None | str | Unset):
        after (int | Unset):  Default: 0.
        limit (int | Unset):  Default: 50.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | TimelinePage
    """

    return sync_detailed(
        client=client,
        type_=type_,
        run=run,
        case=case,
        after=after,
        limit=limit,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    type_: list[str] | None | Unset = UNSET,
    run: None | str | Unset = UNSET,
    case: None | str | Unset = UNSET,
    after: int | Unset = 0,
    limit: int | Unset = 50,
) -> Response[Any | TimelinePage]:
    """Timeline List

     The tenant's events, oldest first, ``limit`` at a time after cursor ``after`` (`stella timeline
    list`).

    Args:
        type_ (list[str] | None | Unset):
        run (None | str | Unset):
        case (None | str | Unset):
        after (int | Unset):  Default: 0.
        limit (int | Unset):  Default: 50.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | TimelinePage]
    """

    kwargs = _get_kwargs(
        type_=type_,
        run=run,
        case=case,
        after=after,
        limit=limit,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    type_: list[str] | None | Unset = UNSET,
    run: None | str | Unset = UNSET,
    case: None | str | Unset = UNSET,
    after: int | Unset = 0,
    limit: int | Unset = 50,
) -> Any | TimelinePage | None:
    """Timeline List

     The tenant's events, oldest first, ``limit`` at a time after cursor ``after`` (`stella timeline
    list`).

    Args:
        type_ (list[str] | None | Unset):
        run (None | str | Unset):
        case (None | str | Unset):
        after (int | Unset):  Default: 0.
        limit (int | Unset):  Default: 50.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | TimelinePage
    """

    return (
        await asyncio_detailed(
            client=client,
            type_=type_,
            run=run,
            case=case,
            after=after,
            limit=limit,
        )
    ).parsed
