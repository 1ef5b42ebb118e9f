"""Notifications: the timeline events a person must act on, handed to a spool directory and a LAN webhook.

A bundle ready for transfer, a failed export run and an incident starting or stopping are written, once each, as
one JSON file per event (the CloudEvent, structured mode) into a spool directory, atomically: a reader of the spool
never sees half a file. An optional webhook on the LAN gets the same CloudEvent by HTTP POST
(``application/cloudevents+json``), tried again with exponential backoff when the receiver is down or answers 5xx,
429 or 408, and never sent twice: a delivered event is remembered in the home, and the receiver can also dedupe on
the CloudEvents ``id`` or the ``Idempotency-Key`` header. A delivery that ran out of attempts waits in the outbox for
`stella timeline notify deliver`.

The configuration is ``notify.json`` in the home (`stella timeline notify set`). Nothing here raises into the
producer: a notification that cannot be written is reported in its :class:`Delivery` and stays in the outbox.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import logging
import threading
import time as _time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from core.atomic import atomic_file, write_bytes
from core.canonical import canonical_json
from core.contract.timeline import (
    BUNDLE_READY_FOR_TRANSFER,
    CLOUDEVENTS_JSON,
    EXPORT_FAILED,
    INCIDENT_STARTED,
    INCIDENT_STOPPED,
)
from core.errors import BadInputError, StellaError, UsageError
from core.home import Home
from core.timeline import TimelineEvent

log = logging.getLogger(__name__)

#: The event types that are notified.
NOTIFY_TYPES = frozenset({BUNDLE_READY_FOR_TRANSFER, EXPORT_FAILED, INCIDENT_STARTED, INCIDENT_STOPPED})
#: HTTP statuses after which a delivery is tried again (the receiver is busy or broken, not refusing the event).
_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_MAX_BACKOFF = 30.0
_MAX_ATTEMPTS = 10


@dataclass(frozen=True)
class WebhookConfig:
    """Where and how hard to deliver: ``attempts`` tries, waiting ``backoff`` seconds, doubling, between them."""

    url: str
    attempts: int = 3
    backoff: float = 0.5
    timeout: float = 3.0

    def checked(self) -> WebhookConfig:
        """This configuration, refused (exit 2) unless the URL is http(s) on the LAN and the numbers make sense."""
        parsed = urllib.parse.urlsplit(self.url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise UsageError(f"webhook URL {self.url!r} must be http:// or https:// with a host")
        if parsed.username or parsed.password:
            raise UsageError("the webhook URL must not carry a user name or password (it is stored in the home)")
        try:
            ip = ipaddress.ip_address(parsed.hostname)
        except ValueError:
            ip = None  # a host name: the LAN's own DNS names it
        if ip is not None and ip.is_global:
            raise UsageError(
                f"webhook host {parsed.hostname} is a public address",
                hint="notifications go to a receiver on the local network (a private, loopback or link-local address)",
            )
        if not 1 <= self.attempts <= _MAX_ATTEMPTS:
            raise UsageError(f"webhook attempts must be 1-{_MAX_ATTEMPTS}, not {self.attempts}")
        if not (0 <= self.backoff <= _MAX_BACKOFF and 0 < self.timeout <= 60):
            raise UsageError(f"webhook backoff must be 0-{_MAX_BACKOFF:g} s and timeout 0-60 s")
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "attempts": self.attempts, "backoff": self.backoff, "timeout": self.timeout}


@dataclass(frozen=True)
class NotifyConfig:
    """``notify.json``: the spool directory and the webhook, each optional."""

    spool: Path | None = None
    webhook: WebhookConfig | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "spool": None if self.spool is None else str(self.spool),
            "webhook": None if self.webhook is None else self.webhook.to_dict(),
        }

    @classmethod
    def from_dict(cls, value: Any, *, path: Path) -> NotifyConfig:
        """Parse ``notify.json``; anything unexpected is refused naming the file (exit 3)."""
        try:
            if not isinstance(value, dict) or set(value) - {"spool", "webhook"}:
                raise ValueError("expected an object with 'spool' and 'webhook'")
            spool = value.get("spool")
            if spool is not None and (not isinstance(spool, str) or not Path(spool).is_absolute()):
                raise ValueError("'spool' must be an absolute path")
            hook = value.get("webhook")
            webhook = None
            if hook is not None:
                if not isinstance(hook, dict) or not isinstance(hook.get("url"), str):
                    raise ValueError("'webhook' must be an object with a 'url'")
                webhook = WebhookConfig(
                    url=hook["url"],
                    attempts=int(hook.get("attempts", 3)),
                    backoff=float(hook.get("backoff", 0.5)),
                    timeout=float(hook.get("timeout", 3.0)),
                ).checked()
        except (ValueError, TypeError, UsageError) as exc:
            text = exc.message if isinstance(exc, UsageError) else str(exc)
            raise BadInputError(f"invalid notification settings: {text}", path=str(path)) from None
        return cls(Path(spool) if spool is not None else None, webhook)


def config_path(home: Home) -> Path:
    return home.root / "notify.json"


def _state_dir(home: Home, name: str) -> Path:
    return home.root / "notify" / name


def load_config(home: Home) -> NotifyConfig:
    """The home's notification settings (none configured: nothing is notified)."""
    path = config_path(home)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return NotifyConfig()
    except OSError as exc:
        raise BadInputError(f"cannot read the notification settings: {exc.strerror}", path=str(path)) from None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadInputError(f"notification settings are not JSON: {exc}", path=str(path)) from None
    return NotifyConfig.from_dict(value, path=path)


def configure(
    home: Home,
    *,
    spool: Path | None = None,
    webhook: str | None = None,
    attempts: int | None = None,
    backoff: float | None = None,
    timeout: float | None = None,
    no_spool: bool = False,
    no_webhook: bool = False,
) -> NotifyConfig:
    """`stella timeline notify set`: change the settings given, keep the others; the file is replaced atomically."""
    current = load_config(home.ensure())
    new_spool = None if no_spool else (spool.expanduser().resolve() if spool is not None else current.spool)
    hook = None if no_webhook else current.webhook
    if not no_webhook and (webhook is not None or attempts is not None or backoff is not None or timeout is not None):
        base = hook or (WebhookConfig(webhook) if webhook is not None else None)
        if base is None:
            raise UsageError("no webhook is configured", hint="give its URL with --webhook URL")
        hook = WebhookConfig(
            url=webhook if webhook is not None else base.url,
            attempts=attempts if attempts is not None else base.attempts,
            backoff=backoff if backoff is not None else base.backoff,
            timeout=timeout if timeout is not None else base.timeout,
        ).checked()
    if new_spool is not None:
        try:
            new_spool.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise UsageError(f"cannot create the spool directory: {exc.strerror}", hint=str(new_spool)) from None
    config = NotifyConfig(new_spool, hook)
    write_bytes(config_path(home), canonical_json(config.to_dict()) + b"\n", mode=0o600)
    return config


@dataclass(frozen=True)
class Delivery:
    """What notifying one event did. ``webhook`` is ``sent``, ``already-sent``, ``in-flight`` (another process is
    sending it now), ``failed``, ``queued`` (in the ``outbox`` file, for :func:`deliver_outbox`) or ``none``."""

    tenant: str
    event_id: str
    type: str
    spooled: Path | None = None
    webhook: str = "none"
    attempts: int = 0
    error: str | None = None
    outbox: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "id": self.event_id,
            "type": self.type,
            "spooled": None if self.spooled is None else str(self.spooled),
            "webhook": self.webhook,
            "attempts": self.attempts,
            "error": self.error,
        }


def notification_name(event: TimelineEvent) -> str:
    """The file name of an event's notification: tenant, sequence (so a spool lists in order) and its id's hash."""
    key = hashlib.sha256(f"{event.tenant}\0{event.id}".encode()).hexdigest()[:16]
    return f"{event.tenant}-{event.seq:012d}-{key}.json"


def notify(
    home: Home,
    event: TimelineEvent,
    *,
    config: NotifyConfig | None = None,
    sleep: Callable[[float], None] = _time.sleep,
    deliver: bool = True,
) -> Delivery | None:
    """Spool and deliver ``event`` if its type is notified and something is configured; None otherwise.

    With ``deliver`` false the webhook's copy is only put in the outbox (the Delivery says ``queued`` and names it in
    ``outbox``): a producer that holds the store hands it to :func:`deliver_outbox` once it has let the store go, so
    a slow or unreachable receiver never keeps other writers waiting."""
    if event.type not in NOTIFY_TYPES:
        return None
    try:
        config = config if config is not None else load_config(home)
    except StellaError as exc:
        return Delivery(event.tenant, event.id, event.type, error=exc.diagnostics())
    if config.spool is None and config.webhook is None:
        return None
    body = canonical_json(event.to_cloudevent())
    name = notification_name(event)
    spooled, error = None, None
    if config.spool is not None:
        target = config.spool / name
        try:
            with contextlib.suppress(FileExistsError):  # spooled before: one file per event
                write_bytes(target, body, mode=0o600, exclusive=True)
            spooled = target
        except StellaError as exc:
            error = exc.diagnostics()
    if config.webhook is None:
        return Delivery(event.tenant, event.id, event.type, spooled=spooled, error=error)
    outbox = _state_dir(home, "outbox") / name
    try:
        outbox.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileExistsError):
            write_bytes(outbox, body, mode=0o600, exclusive=True)
    except (OSError, StellaError) as exc:
        text = exc.diagnostics() if isinstance(exc, StellaError) else str(exc)
        return Delivery(event.tenant, event.id, event.type, spooled=spooled, webhook="failed", error=text)
    if not deliver:
        return Delivery(
            event.tenant, event.id, event.type, spooled=spooled, webhook="queued", error=error, outbox=outbox
        )
    outcome = _deliver(home, outbox, config.webhook, sleep=sleep)
    return Delivery(
        event.tenant,
        event.id,
        event.type,
        spooled=spooled,
        webhook=outcome.state,
        attempts=outcome.attempts,
        error=error or outcome.error,
    )


def deliver_pending(home: Home, *, sleep: Callable[[float], None] = _time.sleep) -> list[Delivery]:
    """`stella timeline notify deliver`: try again every webhook delivery still in the outbox, oldest first."""
    config = load_config(home)
    outbox = _state_dir(home, "outbox")
    if config.webhook is None:
        raise UsageError("no webhook is configured", hint="set one with `stella timeline notify set --webhook URL`")
    done = []
    for path in sorted(outbox.glob("*.json")) if outbox.is_dir() else []:
        try:
            event = orjson.loads(path.read_bytes())
            tenant, event_id, type_ = str(event["tenant"]), str(event["id"]), str(event["type"])
        except (OSError, ValueError, KeyError, TypeError):
            done.append(Delivery("?", path.name, "?", webhook="failed", error=f"{path}: unreadable outbox entry"))
            continue
        outcome = _deliver(home, path, config.webhook, sleep=sleep)
        done.append(
            Delivery(tenant, event_id, type_, webhook=outcome.state, attempts=outcome.attempts, error=outcome.error)
        )
    return done


def deliver_outbox(home: Home, queued: list[Delivery], *, background: bool) -> threading.Thread | None:
    """Deliver the webhook copies :func:`notify` only queued (``deliver=False``): now, or with ``background`` in a
    (non-daemon) thread, which the interpreter waits for before it exits. Nothing raises: a delivery that fails
    waits in the outbox for `stella timeline notify deliver`, as any other."""
    files = [d.outbox for d in queued if d.outbox is not None]
    if not files:
        return None

    def run() -> None:
        try:
            hook = load_config(home).webhook
        except StellaError as exc:
            log.warning("notifications wait in the outbox: %s", exc.diagnostics())
            return
        if hook is None:
            return
        for path in files:
            if path.exists():  # `stella timeline notify deliver` may have sent it meanwhile
                outcome = _deliver(home, path, hook, sleep=_time.sleep)
                if outcome.state == "failed":
                    log.warning("notification %s not delivered: %s", path.name, outcome.error)

    if not background:
        run()
        return None
    thread = threading.Thread(target=run, name="stella-notify", daemon=False)
    thread.start()
    return thread


def pending(home: Home) -> list[str]:
    """The names of the notifications still waiting in the outbox."""
    outbox = _state_dir(home, "outbox")
    return sorted(p.name for p in outbox.glob("*.json")) if outbox.is_dir() else []


@dataclass(frozen=True)
class _Outcome:
    state: str
    attempts: int
    error: str | None = None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A webhook that redirects is refused, not followed: the event goes only where the operator said."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def _deliver(home: Home, outbox_file: Path, hook: WebhookConfig, *, sleep: Callable[[float], None]) -> _Outcome:
    """Send one outbox entry, at most once across processes: the sender holds an exclusive lock on the entry while
    it sends, and a second sender (a background delivery and `stella timeline notify deliver` at the same moment)
    gets ``in-flight``; the entry is removed only after the ``sent`` record is written, under the lock."""
    try:
        fh = outbox_file.open("rb")
    except FileNotFoundError:  # removed by the sender that just delivered it
        return _Outcome("already-sent", 0)
    with fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return _Outcome("in-flight", 0)
        return _send_locked(home, outbox_file, fh.read(), hook, sleep=sleep)


def _send_locked(
    home: Home, outbox_file: Path, body: bytes, hook: WebhookConfig, *, sleep: Callable[[float], None]
) -> _Outcome:
    sent = _state_dir(home, "sent") / outbox_file.name
    if sent.exists() or not outbox_file.exists():  # delivered before (perhaps while we waited to open it)
        with contextlib.suppress(OSError):
            outbox_file.unlink()
        return _Outcome("already-sent", 0)
    event = orjson.loads(body)
    request = urllib.request.Request(  # noqa: S310 - the URL is checked to be http(s) (WebhookConfig.checked)
        hook.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": f"{CLOUDEVENTS_JSON}; charset=utf-8",
            "Idempotency-Key": f"{event['tenant']}/{event['id']}",
            "User-Agent": "stella-notify",
        },
    )
    error = ""
    for attempt in range(1, hook.attempts + 1):
        retry = True
        try:
            with _OPENER.open(request, timeout=hook.timeout) as response:
                status = int(response.status)
        except urllib.error.HTTPError as exc:
            status = exc.code
            exc.close()
        except (OSError, ValueError) as exc:  # refused, reset, timed out, unreachable
            status, error = 0, f"{hook.url}: {getattr(exc, 'reason', exc)}"
        if 200 <= status < 300:
            sent.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with atomic_file(sent, mode=0o600) as fh:
                fh.write(f"{event['tenant']}/{event['id']}\n".encode())
            with contextlib.suppress(OSError):
                outbox_file.unlink()
            return _Outcome("sent", attempt)
        if status:
            error = f"{hook.url} answered HTTP {status}"
            retry = status in _RETRY_STATUSES
        if not retry:
            return _Outcome("failed", attempt, error + " (not tried again)")
        if attempt < hook.attempts:
            sleep(min(hook.backoff * 2 ** (attempt - 1), _MAX_BACKOFF))
    return _Outcome("failed", hook.attempts, error + f" after {hook.attempts} attempts; it waits in the outbox")
