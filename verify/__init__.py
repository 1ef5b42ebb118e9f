"""The receiving side: verification of bundles and import of what verified.

Usable without ``adapters`` and without the store, so a receiver's verification path stays small,
fast to import and auditable. The layer contract (pyproject ``[tool.importlinter]``) keeps it so.
"""
