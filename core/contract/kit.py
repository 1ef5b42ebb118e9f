"""The Offline Kit's wire facts: the files of a volume, the kit-wide checksum files, the schemas, the limits.

A kit is a directory of volumes ``vol-01/``, ``vol-02/``... (one per DVD, Blu-ray or USB stick) beside the kit-wide
``SHA256SUMS`` and its signature. Each volume carries its bundles' files and parts under :data:`DATA_DIR`, the signed
volume manifest (:data:`VOLUME_MANIFEST`), a copy of the kit index (:data:`KIT_INDEX`), the volume's own signed
``sha256sum`` list (:data:`VOLUME_SUMS`, what ``verify.sh`` checks without parsing JSON), the trust anchors under
:data:`TRUST_DIR`, the verify script and a README (the bundle contract's names), and optionally the stella binary.
"""

from __future__ import annotations

from core.contract.evidence import CHECKSUMS

#: ``volumeManifest.schema`` and ``kitIndex.schema``.
VOLUME_SCHEMA = "https://stellaops.dev/schemas/offline-kit-volume/v1"
INDEX_SCHEMA = "https://stellaops.dev/schemas/offline-kit-index/v1"

#: The signed volume manifest (canonical JSON) and its cosign-style signature (base64 of the raw signature).
VOLUME_MANIFEST = "KIT-VOLUME.json"
VOLUME_MANIFEST_SIG = "KIT-VOLUME.json.sig"
#: The kit index, the same bytes on every volume; the volume manifest names its sha256.
KIT_INDEX = "KIT-INDEX.json"
#: The volume's files in ``sha256sum -c`` form (the manifest first, then by path) and its signature by the same key.
VOLUME_SUMS = "KIT-VOLUME.sha256"
VOLUME_SUMS_SIG = "KIT-VOLUME.sha256.sig"
#: Files a volume holds that its manifest does not list (the manifest, the checksums derived from it, their
#: signatures); every other file must be listed.
VOLUME_UNLISTED = (VOLUME_MANIFEST, VOLUME_MANIFEST_SIG, VOLUME_SUMS, VOLUME_SUMS_SIG)

#: Where bundles and their parts lie on a volume, where the trust anchors lie, and the optional stella binary.
DATA_DIR = "bundles/"
TRUST_DIR = "trust/"
#: The kit signer's public key (SubjectPublicKeyInfo PEM): what ``verify.sh`` and ``stella kit verify --key`` take.
KIT_PUBLIC_KEY = "trust/kit-signer.pub"
#: The pinned TUF roots a mirror receiver needs (``N.root.json``), when the kit carries mirror bundles.
TUF_ROOTS_DIR = "trust/tuf/"
BINARY_DIR = "bin/"

#: The kit-wide checksum list (paths ``vol-NN/...``) and its cosign-style signature, beside the volumes; the
#: conventional name, which a sealed evidence bundle's list has too.
KIT_SUMS = CHECKSUMS
KIT_SUMS_SIG = "SHA256SUMS.sig"

#: Volume directories are ``vol-01`` ... ``vol-99``; a part of a split bundle is ``NAME.partNNN``.
VOLUME_DIR = "vol-{number:02d}"
PART_FILE = "{name}.part{part:03d}"

#: The largest file any volume holds: 4 GiB - 1 byte, what FAT32 and a single ISO 9660 extent can store.
MAX_FILE_SIZE = (1 << 32) - 1
#: The sector of optical media and of ISO 9660: a file occupies whole sectors.
SECTOR = 2048
