"""The screens of the app, their keys, and the bindings that switch between them."""

from __future__ import annotations

from textual.binding import Binding

#: mode name -> (key, title, what it shows): the help screen, the command palette and the footer use it.
SCREENS_HELP: dict[str, tuple[str, str, str]] = {
    "dashboard": ("d", "Dashboard", "store counts per tenant, recent runs, keys, warnings"),
    "import": ("i", "Import", "import files, directories or archives into a tenant"),
    "data": ("b", "Data", "documents, advisories, VEX, SBOMs ... of a tenant (stella data)"),
    "profiles": ("p", "Profiles", "list, inspect, create and edit export profiles"),
    "export": ("e", "Export", "run wizard: profile, selectors, options, confirm; then the run"),
    "runs": ("h", "Runs", "export runs of a tenant and the event timeline of each"),
    "verify": ("v", "Verify", "verify a received bundle check by check"),
    "mirror": ("m", "Mirror", "a mirror directory: status, receipts, verify, rollback, query"),
    "keys": ("k", "Keys", "signing keys, trusted keys and the TUF roles of the home"),
}


def nav_bindings(*, show: bool, prefix: str = "") -> list[Binding]:
    """A binding per screen: on the app (hidden: 80 columns hold only a screen's own keys) and on the dashboard
    (shown, so the home screen says where everything is). ``prefix`` is ``"app."`` for a screen's copy."""
    return [
        Binding(key, f"{prefix}show('{mode}')", title, show=show and mode != "dashboard")
        for mode, (key, title, _) in SCREENS_HELP.items()
    ]
