"""`stella token create|list|revoke`: access tokens for the local API (`stella serve`), minted on this machine.

The token itself is printed once, alone on the last line of `token create`'s output (or as ``token`` in its
``--json`` object); it is kept nowhere and never logged."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from app.output import escape, print_json, stdout, table
from core.contract.api import SCOPES
from core.durations import human_duration, parse_duration
from core.home import resolve_home
from services.tokens import MAX_TTL, create_token, list_tokens, revoke_token


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "local"


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("token", parents=[common], help="access tokens for the local API: create, list, revoke")
    tsub = p.add_subparsers(dest="token_command", metavar="ACTION", required=True)

    create = tsub.add_parser(
        "create",
        parents=[common],
        help="mint a short-lived token for one tenant and some scopes",
        description="Mint a signed access token (a JWT, ES256, with the home's token key, made on first use) for "
        "TENANT with the given scopes, valid for --ttl (at most "
        f"{MAX_TTL.days} days). The token is printed once, alone on the last line; send it as "
        "'Authorization: Bearer TOKEN' (or, with --dpop-jkt, as 'Authorization: DPoP TOKEN' with a DPoP proof "
        f"signed by that key). Scopes: {', '.join(SCOPES)}. Exit codes: 2 bad tenant, scope, ttl or thumbprint.",
    )
    create.add_argument("--tenant", required=True, help="the only tenant the token can see")
    create.add_argument(
        "--scope",
        action="append",
        required=True,
        choices=SCOPES,
        metavar="SCOPE",
        help="a scope to grant (repeat for more): " + ", ".join(SCOPES),
    )
    create.add_argument("--ttl", default="1h", help="how long the token lives (default 1h; e.g. 15m, 8h, 7d)")
    create.add_argument("--subject", default=None, help="who the token is for (default: your user name)")
    create.add_argument(
        "--dpop-jkt",
        metavar="THUMBPRINT",
        help="bind the token to a client key (RFC 9449): the RFC 7638 SHA-256 thumbprint of its public JWK",
    )
    create.set_defaults(handler=run_create)

    lst = tsub.add_parser("list", parents=[common], help="list minted tokens (ids, tenants, scopes, status)")
    lst.set_defaults(handler=run_list)

    rev = tsub.add_parser("revoke", parents=[common], help="end a token before it expires")
    rev.add_argument("id", metavar="ID", help="the token id (see `stella token list`)")
    rev.set_defaults(handler=run_revoke)


def run_create(args: argparse.Namespace) -> int:
    info, token = create_token(
        resolve_home(args.home),
        tenant=args.tenant,
        scopes=args.scope,
        ttl=parse_duration(args.ttl),
        subject=args.subject or _user(),
        dpop_jkt=args.dpop_jkt,
    )
    if args.json:
        print_json(info.to_dict() | {"token": token})
        return 0
    bound = f", bound to DPoP key {info.dpop_jkt}" if info.dpop_jkt else ""
    stdout.print(
        f"token [bold]{info.id}[/] for tenant {escape(info.tenant)} ({', '.join(info.scopes)}), "
        f"expires {info.expires_at.isoformat()} (in {human_duration(info.expires_at - info.created_at)}){bound}"
    )
    stdout.file.flush()
    # Written directly (not through rich) so that no wrapping or markup ever touches the token.
    sys.stdout.write(token + "\n")
    sys.stdout.flush()
    return 0


def run_list(args: argparse.Namespace) -> int:
    tokens = list_tokens(resolve_home(args.home))
    if args.json:
        print_json({"tokens": [t.to_dict() for t in tokens]})
        return 0
    if not tokens:
        stdout.print("no tokens; mint one with `stella token create --tenant T --scope export:read`")
        return 0
    table(
        ["id", "tenant", "subject", "scopes", "expires", "status", "DPoP"],
        [
            [
                t.id,
                t.tenant,
                t.subject,
                " ".join(t.scopes),
                t.expires_at.isoformat(),
                t.status(),
                "bound" if t.dpop_jkt else "",
            ]
            for t in tokens
        ],
    )
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    info = revoke_token(resolve_home(args.home), args.id)
    if args.json:
        print_json(info.to_dict())
    else:
        stdout.print(f"revoked token [bold]{info.id}[/] (tenant {escape(info.tenant)})")
    return 0
