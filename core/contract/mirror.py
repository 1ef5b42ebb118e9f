"""Paths of the ``mirror:full`` / ``mirror:delta`` bundles that more than one side reads."""

from __future__ import annotations

#: The TUF metadata the bundle carries (``N.root.json``, ``V.targets.json``, ``V.snapshot.json``,
#: ``timestamp.json``); under the bundle's trust prefix, so it is archived first.
TUF_METADATA = "tuf/metadata/"
