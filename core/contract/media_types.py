"""Media types the bundle writers give files in ``export.json`` and that verifiers recognise."""

from __future__ import annotations

#: A DSSE envelope (``provenance.dsse.json``, each kind's ``manifest.dsse.json``).
DSSE_ENVELOPE = "application/vnd.dsse.envelope.v1+json"
#: A Sigstore bundle v0.3 (``provenance.sigstore.json``, ``attestations/manifest.sigstore.json``).
SIGSTORE_BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
#: The prefix of every Sigstore bundle media type (``...bundle+json;version=0.1`` to ``...bundle.v0.3+json``).
SIGSTORE_BUNDLE_PREFIX = "application/vnd.dev.sigstore.bundle"
#: A Sigstore trusted root; the prefix of every version's media type.
SIGSTORE_TRUSTED_ROOT = "application/vnd.dev.sigstore.trustedroot"
#: A payload file encrypted to age recipients.
AGE = "application/vnd.age"
#: The bundle's ``verify.sh`` and the devportal scripts.
SHELL_SCRIPT = "text/x-shellscript"
NDJSON = "application/x-ndjson"
NDJSON_ZSTD = "application/x-ndjson+zstd"
#: OCI image layout of the Trivy DB bundles (``oci/``).
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
#: The layer of a Trivy DB tarball (``trivy.db`` + ``metadata.json``) and of a Java DB tarball.
TRIVY_DB_LAYER = "application/vnd.aquasec.trivy.db.layer.v1.tar+gzip"
TRIVY_JAVA_DB_LAYER = "application/vnd.aquasec.trivy.javadb.layer.v1.tar+gzip"
#: The OCI artifact type of both Trivy DB images.
TRIVY_CONFIG = "application/vnd.aquasec.trivy.config.v1+json"

#: A mirror bundle's pack of raw documents, index segment and signed state.
MIRROR_PACK = "application/vnd.stellaops.mirror.pack"
MIRROR_SEGMENT = "application/vnd.stellaops.mirror.index+jsonl+zstd"
MIRROR_STATE = "application/vnd.stellaops.mirror.state+json"

#: A stella bundle pushed to an OCI registry (`stella distribute --to oci://`): the manifest's ``artifactType`` and
#: the media type of its one layer, the bundle archive byte for byte (zstd or gzip, as the profile wrote it).
STELLA_BUNDLE_ARTIFACT = "application/vnd.stellaops.bundle.v1"
STELLA_BUNDLE_LAYER_ZSTD = "application/vnd.stellaops.bundle.v1.tar+zstd"
STELLA_BUNDLE_LAYER_GZIP = "application/vnd.stellaops.bundle.v1.tar+gzip"
#: The referrer of a pushed bundle (its ``subject``): the signed manifest, its signature and the provenance envelope.
STELLA_BUNDLE_SIGNATURE_ARTIFACT = "application/vnd.stellaops.bundle.signature.v1"
#: ``export.json`` and its cosign-compatible detached signature as layers of that referrer.
STELLA_EXPORT_MANIFEST = "application/vnd.stellaops.export.manifest.v1+json"
STELLA_EXPORT_SIGNATURE = "application/vnd.stellaops.export.signature.v1"
#: The bundle's in-toto attestation file (``BUNDLE.intoto.jsonl``: one DSSE envelope a line) as a layer of that
#: referrer.
STELLA_EXPORT_ATTESTATION = "application/vnd.stellaops.export.attestation.v1+jsonl"
