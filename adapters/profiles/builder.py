"""The bundle builder the run engine calls: a run's pinned parameters -> a signed bundle archive."""

from __future__ import annotations

from collections.abc import Iterator

from adapters.profiles.registry import get_profile
from core.bundle import BundleSpec, ResolvedInput, build_bundle
from core.progress import CancelToken, Observer
from core.runs import Artifact, BundleBuilder, ExportRun
from core.selectors import InputRef
from core.signing import Signer
from core.store import Store


def bundle_builder(store: Store, signer: Signer, *, passphrase: str | None = None) -> BundleBuilder:
    """A :class:`core.runs.BundleBuilder` that writes the run's profile payload and signs it with ``signer``.

    ``passphrase`` encrypts the payload with age's scrypt stanza; it is never stored with the run.
    """

    def build(run: ExportRun, inputs: Iterator[InputRef], sink: Observer, cancel: CancelToken, /) -> Artifact:
        config = run.profile_config
        # Streamed once, into provenance.json's resolvedDependencies: never held as a list.
        resolved = (ResolvedInput(i.document_sha256, i.kind, i.format, i.document_id) for i in inputs)
        spec = BundleSpec(
            run_id=run.bundle_run_id,
            tenant=run.tenant,
            profile_id=run.profile_id,
            profile_kind=config.kind,
            profile_variant=config.variant,
            profile_revision=run.profile_revision,
            profile_config=config.to_dict(),
            selectors=run.selectors_dict,
            created_at=run.bundle_created_at,
            compression_level=config.compression_level,
            options=run.options,
            input_count=run.input_count,
        )
        sha, size = build_bundle(
            spec,
            get_profile(config.kind, config.variant),
            inputs=lambda: resolved,
            raw_bytes=lambda digest: store.raw_bytes(run.tenant, digest),
            query=store.cursor(),
            signer=signer,
            out_path=run.out_path,
            sink=sink,
            cancel=cancel,
            home=store.home.root,
            passphrase=passphrase,
        )
        return Artifact(run.out_path, sha, size)

    return build
