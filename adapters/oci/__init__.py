"""stella's client of OCI distribution registries (network I/O, hence an adapter)."""
