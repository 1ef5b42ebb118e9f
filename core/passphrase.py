"""Where a key's passphrase comes from when no passphrase file is given: ``$STELLA_PASSWORD`` (as cosign reads
``COSIGN_PASSWORD``), else a prompt on the terminal, which only the CLI allows (:func:`allow_prompt`): the TUI
and scripts are never asked. Small on purpose: the CLI imports it before it knows the command."""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable

from core.errors import BadInputError

#: The environment variable a passphrase may come from.
PASSWORD_ENV = "STELLA_PASSWORD"  # noqa: S105 - the variable's name, not a password

_prompt: Callable[[str], str] | None = None


def allow_prompt() -> None:
    """Let a passphrase that nothing else gives be typed at a prompt (when stdin is a terminal)."""
    global _prompt
    _prompt = getpass.getpass


def passphrase_from_env_or_prompt(ask: str | None) -> bytes | None:
    """``$STELLA_PASSWORD`` when set; else, with ``ask`` (the question) and prompting allowed on a terminal,
    what is typed (nothing typed is refused); else None. The passphrase is never echoed or logged."""
    env = os.environ.get(PASSWORD_ENV)
    if env:
        return env.encode()
    if ask is None or _prompt is None or not sys.stdin.isatty():
        return None
    try:
        typed = _prompt(f"{ask}: ")
    except EOFError:
        typed = ""
    if not typed:
        raise BadInputError("no passphrase typed")
    return typed.encode()
