"""The screens of the app, their keys, and the bindings that switch between them."""

from __future__ import annotations

from dataclasses import dataclass

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
    "timeline": ("w", "Timeline", "what happened, in order: export runs, evidence, holds, incidents (filters)"),
    "kit": ("u", "Kit", "Offline Kit: put finished runs on DVD, Blu-ray or USB volumes; plan, assemble, verify"),
    "evidence": ("y", "Evidence", "the evidence locker: sealed bundles, verify, legal holds, export"),
    "bootstrap": ("j", "Bootstrap", "bootstrap packs of images and Helm charts: build, verify and list, push"),
}


#: Screens the dashboard's footer leaves out (80 columns hold no more); their keys work, help and the palette list them.
FOOTER_UNLISTED = ("timeline", "kit", "evidence", "bootstrap")


def nav_bindings(*, show: bool, prefix: str = "") -> list[Binding]:
    """A binding per screen: on the app (hidden: 80 columns hold only a screen's own keys) and on the dashboard
    (shown, so the home screen says where everything is). ``prefix`` is ``"app."`` for a screen's copy."""
    return [
        Binding(key, f"{prefix}show('{mode}')", title, show=show and mode not in ("dashboard", *FOOTER_UNLISTED))
        for mode, (key, title, _) in SCREENS_HELP.items()
    ]


@dataclass(frozen=True)
class PaletteAction:
    """An action the command palette offers by name: it opens ``mode`` and runs the screen's ``action`` there (a
    form, a confirmation, a field to fill). ``command`` is the CLI twin, shown as the palette's help line."""

    title: str
    mode: str
    action: str | None
    command: str


#: Every action of the app by name. Receiving a bundle of any kind starts on the Verify screen: it verifies the
#: bundle, then ctrl+n imports or installs what verified.
ACTIONS: tuple[PaletteAction, ...] = (
    PaletteAction("Import files, directories or archives", "import", "focus('#import-paths')", "stella import PATH"),
    PaletteAction("Browse data: filter or find a record by id", "data", "focus('#data-filter')", "stella data show ID"),
    PaletteAction("Store counts", "data", "stats", "stella data stats"),
    PaletteAction("New export profile", "profiles", "create", "stella export profile create"),
    PaletteAction("Edit the highlighted export profile", "profiles", "edit", "stella export profile update"),
    PaletteAction("Export: run a profile (wizard)", "export", None, "stella export run"),
    PaletteAction("Show the highlighted run's parameters", "runs", "open_run", "stella export show RUN"),
    PaletteAction("Cancel the highlighted export run", "runs", "cancel_run", "stella export cancel RUN"),
    PaletteAction("Verify a bundle", "verify", "focus('#verify-bundle')", "stella verify BUNDLE"),
    PaletteAction(
        "Import or install a verified bundle", "verify", "receive", "verify it, then ctrl+n (by the bundle's kind)"
    ),
    PaletteAction(
        "Import a mirror bundle", "verify", "focus('#verify-bundle')", "stella mirror import: verify, ctrl+n"
    ),
    PaletteAction("Install a Trivy DB", "verify", "focus('#verify-bundle')", "stella trivy install: verify, ctrl+n"),
    PaletteAction("Import a risk bundle (KEV/EPSS)", "verify", "focus('#verify-bundle')", "stella risk bundle import"),
    PaletteAction(
        "Import an attestation bundle", "verify", "focus('#verify-bundle')", "stella attest bundle import: verify"
    ),
    PaletteAction("Mirror status", "mirror", "status", "stella mirror status DIR"),
    PaletteAction("Verify a mirror directory", "mirror", "verify", "stella mirror verify DIR"),
    PaletteAction("Roll back a mirror", "mirror", "rollback", "stella mirror rollback DIR"),
    PaletteAction("Query a mirror", "mirror", "focus('#mirror-query')", "stella mirror query DIR --id ID"),
    PaletteAction("Generate a signing key", "keys", "generate", "stella keys generate NAME"),
    PaletteAction("Export the highlighted public key", "keys", "export_public", "stella keys export NAME"),
    PaletteAction("Import a signing key from a PEM file", "keys", "import_key", "stella keys import NAME FILE"),
    PaletteAction("Rename the highlighted signing key", "keys", "rename_key", "stella keys rename OLD NEW"),
    PaletteAction("Delete the highlighted signing key", "keys", "delete_key", "stella keys delete NAME --yes"),
    PaletteAction("Trust a receipt key (receipts only)", "keys", "trust_receipts", "stella trust add --receipts-only"),
    PaletteAction("Trust a public key", "keys", "trust_add", "stella trust add KEY.pem"),
    PaletteAction("Stop trusting the highlighted key", "keys", "trust_remove", "stella trust remove KEYID"),
    PaletteAction("Create the TUF repository", "keys", "tuf_init", "stella tuf init --key NAME"),
    PaletteAction("Change a TUF role's expiry", "keys", "tuf_expiry", "stella tuf expiry ROLE DURATION"),
    PaletteAction("Rotate a TUF role's keys", "keys", "tuf_rotate", "stella tuf rotate ROLE --key NAME"),
    PaletteAction(
        "Assemble an Offline Kit", "kit", "assemble", "stella kit assemble --volume-size dvd --key NAME --out DIR RUN"
    ),
    PaletteAction("Verify an Offline Kit volume", "kit", "verify", "stella kit verify VOLUME_DIR"),
    PaletteAction("Verify the highlighted evidence bundle", "evidence", "verify", "stella evidence verify FILE"),
    PaletteAction(
        "Place a legal hold on the highlighted evidence", "evidence", "hold", "stella evidence hold CASE --bundle ID"
    ),
    PaletteAction(
        "Release a legal hold on the highlighted evidence",
        "evidence",
        "release",
        "stella evidence release CASE --bundle ID",
    ),
    PaletteAction(
        "Export the highlighted evidence bundle", "evidence", "export", "stella evidence export ID --out FILE.tgz"
    ),
    PaletteAction(
        "Build a bootstrap pack", "bootstrap", "focus('#boot-spec')", "stella bootstrap build SPEC --out PACK"
    ),
    PaletteAction("List a bootstrap pack (verified)", "bootstrap", "focus('#boot-pack')", "stella bootstrap list PACK"),
    PaletteAction(
        "Push a bootstrap pack to a registry",
        "bootstrap",
        "focus('#boot-registry')",
        "stella bootstrap push PACK --registry HOST/PREFIX",
    ),
    PaletteAction("Filter the timeline", "timeline", "focus('#timeline-filter')", "stella timeline list --type T"),
)
