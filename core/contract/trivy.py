"""File names of the ``trivy:db`` and ``trivy:java-db`` bundles, as Trivy itself names them in its cache."""

from __future__ import annotations

#: The Trivy cache files a bundle carries under ``cache/<dir>/``: ``cache/db/trivy.db``, ``cache/java-db/...``.
CACHE = "cache/"
DB_DIR = "db"
JAVA_DB_DIR = "java-db"
DB_FILE = "trivy.db"
JAVA_DB_FILE = "trivy-java.db"
METADATA = "metadata.json"
#: The tarballs upstream publishes (``trivy.db`` or ``trivy-java.db`` plus ``metadata.json``).
DB_TARBALL = "db.tar.gz"
JAVA_DB_TARBALL = "javadb.tar.gz"
#: The OCI image layout of the same tarball, for ``trivy --db-repository`` from a local registry.
OCI_LAYOUT = "oci/oci-layout"
OCI_INDEX = "oci/index.json"
OCI_BLOBS = "oci/blobs/sha256/"
