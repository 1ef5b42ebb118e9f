from http import HTTPStatus
from typing import Any, cast

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.verify_report import VerifyReport
from ...models.verify_run import VerifyRun
from ...types import UNSET, File, Response, Unset


def _get_kwargs(
    *,
    body: VerifyRun | File | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {"Accept": "application/json"}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/api/v1/verify",
    }

    if isinstance(body, VerifyRun):
        _kwargs["json"] = body.to_dict()

        headers["Content-Type"] = "application/json"
    if isinstance(body, File):
        _kwargs["content"] = body.payload
        headers["Content-Type"] = "application/octet-stream"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Any | VerifyReport | None:
    if response.status_code == 200:
        response_200 = VerifyReport.from_dict(response.json())

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

    if response.status_code == 413:
        response_413 = cast(Any, None)
        return response_413

    if response.status_code == 415:
        response_415 = cast(Any, None)
        return response_415

    if response.status_code == 422:
        response_422 = cast(Any, None)
        return response_422

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[Any | VerifyReport]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    body: VerifyRun | File | Unset = UNSET,
) -> Response[Any | VerifyReport]:
    """Verify Bundle

     Verify a bundle check by check as `stella verify` does: a run's (JSON ``{"run": ID}``, against its
    signing key) or one uploaded as ``application/octet-stream`` (against the home's trust store; at
    most
    ``max_upload`` bytes, else 413; a bundle of another tenant is refused, 403 ``cross-tenant``).

    The report streams as ``application/x-ndjson``: a ``check`` line as each check completes, then one
    ``result`` line (``verified``, ``exitCode``, ``exitMeaning``, ``code``) or, if the verification
    could not
    finish, a ``problem`` line. With ``Accept: application/json``, the report is one document at the end
    (``verified``, ``exitCode``, ``checks``, ``manifest``). A bundle that does not verify is a 200
    answer whose
    report says why; errors before the first check are problem+json.

    Args:
        body (VerifyRun):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | VerifyReport]
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
    body: VerifyRun | File | Unset = UNSET,
) -> Any | VerifyReport | None:
    """Verify Bundle

     Verify a bundle check by check as `stella verify` does: a run's (JSON ``{"run": ID}``, against its
    signing key) or one uploaded as ``application/octet-stream`` (against the home's trust store; at
    most
    ``max_upload`` bytes, else 413; a bundle of another tenant is refused, 403 ``cross-tenant``).

    The report streams as ``application/x-ndjson``: a ``check`` line as each check completes, then one
    ``result`` line (``verified``, ``exitCode``, ``exitMeaning``, ``code``) or, if the verification
    could not
    finish, a ``problem`` line. With ``Accept: application/json``, the report is one document at the end
    (``verified``, ``exitCode``, ``checks``, ``manifest``). A bundle that does not verify is a 200
    answer whose
    report says why; errors before the first check are problem+json.

    Args:
        body (VerifyRun):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | VerifyReport
    """

    return sync_detailed(
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    body: VerifyRun | File | Unset = UNSET,
) -> Response[Any | VerifyReport]:
    """Verify Bundle

     Verify a bundle check by check as `stella verify` does: a run's (JSON ``{"run": ID}``, against its
    signing key) or one uploaded as ``application/octet-stream`` (against the home's trust store; at
    most
    ``max_upload`` bytes, else 413; a bundle of another tenant is refused, 403 ``cross-tenant``).

    The report streams as ``application/x-ndjson``: a ``check`` line as each check completes, then one
    ``result`` line (``verified``, ``exitCode``, ``exitMeaning``, ``code``) or, if the verification
    could not
    finish, a ``problem`` line. With ``Accept: application/json``, the report is one document at the end
    (``verified``, ``exitCode``, ``checks``, ``manifest``). A bundle that does not verify is a 200
    answer whose
    report says why; errors before the first check are problem+json.

    Args:
        body (VerifyRun):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | VerifyReport]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    body: VerifyRun | File | Unset = UNSET,
) -> Any | VerifyReport | None:
    """Verify Bundle

     Verify a bundle check by check as `stella verify` does: a run's (JSON ``{"run": ID}``, against its
    signing key) or one uploaded as ``application/octet-stream`` (against the home's trust store; at
    most
    ``max_upload`` bytes, else 413; a bundle of another tenant is refused, 403 ``cross-tenant``).

    The report streams as ``application/x-ndjson``: a ``check`` line as each check completes, then one
    ``result`` line (``verified``, ``exitCode``, ``exitMeaning``, ``code``) or, if the verification
    could not
    finish, a ``problem`` line. With ``Accept: application/json``, the report is one document at the end
    (``verified``, ``exitCode``, ``checks``, ``manifest``). A bundle that does not verify is a 200
    answer whose
    report says why; errors before the first check are problem+json.

    Args:
        body (VerifyRun):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | VerifyReport
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
        )
    ).parsed
