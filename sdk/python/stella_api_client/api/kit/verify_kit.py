from http import HTTPStatus
from typing import Any, cast

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.kit_report import KitReport
from ...models.kit_verify import KitVerify
from ...types import Response


def _get_kwargs(
    *,
    body: KitVerify,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/api/v1/kit/verify",
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Any | KitReport | None:
    if response.status_code == 200:
        response_200 = KitReport.from_dict(response.json())

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

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[Any | KitReport]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    body: KitVerify,
) -> Response[Any | KitReport]:
    """Kit Verify

     Verify Offline Kit volumes on the server host, each alone, then together (`stella kit verify
    DIR...`,
    against the home's trust store): the report `--json` prints, check by check per volume. A kit that
    does not
    verify is still a 200, with ``verified`` false and the ``exitCode`` the CLI would end with.

    Args:
        body (KitVerify):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | KitReport]
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
    body: KitVerify,
) -> Any | KitReport | None:
    """Kit Verify

     Verify Offline Kit volumes on the server host, each alone, then together (`stella kit verify
    DIR...`,
    against the home's trust store): the report `--json` prints, check by check per volume. A kit that
    does not
    verify is still a 200, with ``verified`` false and the ``exitCode`` the CLI would end with.

    Args:
        body (KitVerify):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | KitReport
    """

    return sync_detailed(
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    body: KitVerify,
) -> Response[Any | KitReport]:
    """Kit Verify

     Verify Offline Kit volumes on the server host, each alone, then together (`stella kit verify
    DIR...`,
    against the home's trust store): the report `--json` prints, check by check per volume. A kit that
    does not
    verify is still a 200, with ``verified`` false and the ``exitCode`` the CLI would end with.

    Args:
        body (KitVerify):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | KitReport]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    body: KitVerify,
) -> Any | KitReport | None:
    """Kit Verify

     Verify Offline Kit volumes on the server host, each alone, then together (`stella kit verify
    DIR...`,
    against the home's trust store): the report `--json` prints, check by check per volume. A kit that
    does not
    verify is still a 200, with ``verified`` false and the ``exitCode`` the CLI would end with.

    Args:
        body (KitVerify):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | KitReport
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
        )
    ).parsed
