"""What stella writes into an OCI registry besides media types: the annotation keys of a pushed bundle's manifest
and the tag the referrers tag schema uses on registries without the referrers API (OCI distribution spec 1.1)."""

from __future__ import annotations

#: Annotations of a pushed bundle's manifest (and copied into its referrers' index entries).
ANNOTATION_TENANT = "org.stellaops.tenant"
ANNOTATION_PROFILE = "org.stellaops.profile"
ANNOTATION_RUN_ID = "org.stellaops.run-id"
#: ``sha256:<hex>`` of the bundle's ``export.json``, the signed manifest inside the archive.
ANNOTATION_EXPORT_DIGEST = "org.stellaops.export.digest"
#: ``sha256:<hex>`` of the bundle's provenance envelope (``provenance.dsse.json``), when the bundle has one.
ANNOTATION_PROVENANCE_REF = "org.stellaops.provenance.ref"
#: The referrers tag schema: the tag ``sha256-<hex>`` holds an image index of the referrers of ``sha256:<hex>``.
REFERRERS_TAG_PREFIX = "sha256-"

#: The OCI image spec's pre-defined annotation keys stella writes (image-spec annotations.md).
ANNOTATION_TITLE = "org.opencontainers.image.title"
ANNOTATION_CREATED = "org.opencontainers.image.created"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
