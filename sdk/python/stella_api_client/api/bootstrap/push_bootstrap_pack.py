from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.bootstrap_push import BootstrapPush
from ...models.bootstrap_pushed import BootstrapPushed
from ...types import Response


def _get_kwargs(
    run_id: str,
    *,
    body: BootstrapPush,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/api/v1/export/runs/{run_id}/bootstrap/push".format(
            run_id=quote(str(run_id), safe=""),
        ),
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Any | BootstrapPushed | None:
    if response.status_code == 200:
        response_200 = BootstrapPushed.from_dict(response.json())

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

    if response.status_code == 409:
        response_409 = cast(Any, None)
        return response_409

    if response.status_code == 422:
        response_422 = cast(Any, None)
        return response_422

    if response.status_code == 500:
        response_500 = cast(Any, None)
        return response_500

    if response.status_code == 503:
        response_503 = cast(Any, None)
        return response_503

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[Any | BootstrapPushed]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    run_id: str,
    *,
    client: AuthenticatedClient,
    body: BootstrapPush,
) -> Response[Any | BootstrapPushed]:
    """Bootstrap Push

     Verify a bootstrap pack run's bundle, then push every image and chart by digest to ``registry``
    (`stella bootstrap push PACK --registry HOST[/PREFIX] --json`), with no credentials (a registry that
    admits
    the push anonymously, as the distributions endpoint pushes). Scope ``export:run``.

    Args:
        run_id (str):
        body (BootstrapPush):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | BootstrapPushed]
    """

    kwargs = _get_kwargs(
        run_id=run_id,
        body=body,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    run_id: str,
    *,
    client: AuthenticatedClient,
    body: BootstrapPush,
) -> Any | BootstrapPushed | None:
    """Bootstrap Push

     Verify a bootstrap pack run's bundle, then push every image and chart by digest to ``registry``
    (`stella bootstrap push PACK --registry HOST[/PREFIX] --json`), with no credentials (a registry that
    admits
    the push anonymously, as the distributions endpoint pushes). Scope ``export:run``.

    Args:
        run_id (str):
        body (BootstrapPush):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | BootstrapPushed
    """

    return sync_detailed(
        run_id=run_id,
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    run_id: str,
    *,
    client: AuthenticatedClient,
    body: BootstrapPush,
) -> Response[Any | BootstrapPushed]:
    """Bootstrap Push

     Verify a bootstrap pack run's bundle, then push every image and chart by digest to ``registry``
    (`stella bootstrap push PACK --registry HOST[/PREFIX] --json`), with no credentials (a registry that
    admits
    the push anonymously, as the distributions endpoint pushes). Scope ``export:run``.

    Args:
        run_id (str):
        body (BootstrapPush):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | BootstrapPushed]
    """

    kwargs = _get_kwargs(
        run_id=run_id,
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    run_id: str,
    *,
    client: AuthenticatedClient,
    body: BootstrapPush,
) -> Any | BootstrapPushed | None:
    """Bootstrap Push

     Verify a bootstrap pack run's bundle, then push every image and chart by digest to ``registry``
    (`stella bootstrap push PACK --registry HOST[/PREFIX] --json`), with no credentials (a registry that
    admits
    the push anonymously, as the distributions endpoint pushes). Scope ``export:run``.

    Args:
        run_id (str):
        body (BootstrapPush):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | BootstrapPushed
    """

    return (
        await asyncio_detailed(
            run_id=run_id,
            client=client,
            body=body,
        )
    ).parsed
