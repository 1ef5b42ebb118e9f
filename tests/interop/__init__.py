"""Interop tests: stella's output checked by real external tools (openssl, @sigstore/verify, ...)."""
