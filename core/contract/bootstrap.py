"""Wire facts of a bootstrap pack (``bootstrap:pack``): where the OCI image layout and the pack manifest sit in the
bundle, and the OCI and Helm media types the layout holds (OCI image spec 1.1; Helm's ``pkg/registry`` constants)."""

from __future__ import annotations

from core.contract.devportal import MANIFEST as _SAME_NAME

#: The pack manifest: every image and chart with its digest, platforms and source reference.
PACK_MANIFEST = "bootstrap.json"
PACK_SCHEMA = "stella.bootstrap-pack/v1"
#: The one OCI image layout of the pack (``skopeo ... oci:DIR/layout:REF`` reads it once extracted).
LAYOUT_MARKER = "layout/oci-layout"
LAYOUT_INDEX = "layout/index.json"
LAYOUT_BLOBS = "layout/blobs/sha256"
#: The pack spec file's conventional name (``stella bootstrap build bootstrap.yaml``).
SPEC_FILE = "bootstrap.yaml"

OCI_IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
#: Helm: the chart's config (JSON of Chart.yaml's metadata), the chart archive, its provenance file.
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
HELM_PROVENANCE = "application/vnd.cncf.helm.chart.provenance.v1.prov"

#: Source schemes of an image in a pack spec.
OCI_ARCHIVE = "oci-archive:"
DOCKER_ARCHIVE = "docker-archive:"
OCI_DIR = "oci:"
#: An image in a registry the operator reaches, fetched (every byte checked) before the pack is planned.
REGISTRY_SOURCE = "docker://"
#: The index of a ``docker save`` archive (Config, RepoTags, Layers): the same file name as the portal manifest, so
#: spelled once, there.
DOCKER_ARCHIVE_MANIFEST = _SAME_NAME
