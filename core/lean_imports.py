"""Keep securesystemslib's AWS KMS signer from loading boto3 when TUF is imported.

``tuf.api.metadata`` imports ``securesystemslib.signer``, which imports every signer it ships; the AWS one imports
boto3 and botocore when they are installed (they are: stella's S3 distribution uses them), about 0.2 s of start-up
for every mirror, TUF and trust command that never signs with AWS KMS. stella signs TUF metadata with its own keys.

:func:`install` (called once by the CLI's ``main``) puts a finder first on ``sys.meta_path`` that, only while
``securesystemslib.signer._aws_signer`` itself is being executed, makes ``import boto3`` in that thread fail as
if boto3 were not installed; that module is written for that case (its AWSSigner then refuses to be used). Any
other import of boto3, before or after or in another thread, is untouched: the S3 code loads it when it needs it.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import threading
from collections.abc import Sequence
from types import ModuleType

_GUARDED = "securesystemslib.signer._aws_signer"
_BLOCKED = ("boto3", "botocore")


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self) -> None:
        self.inside: int | None = None  # the thread executing the AWS signer's module, while it does

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if self.inside == threading.get_ident() and fullname.partition(".")[0] in _BLOCKED:
            raise ImportError(f"{fullname} is not loaded for securesystemslib's AWS signer (stella does not use it)")
        if fullname != _GUARDED or self.inside is not None:
            return None
        for finder in sys.meta_path:  # the finder that would have found it (PyInstaller's own in the binary)
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None:
            return None
        spec.loader = _Guarded(spec.loader, self)
        return spec


class _Guarded(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader, finder: _Finder) -> None:
        self.loader = loader
        self.finder = finder

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        if any(name in sys.modules for name in _BLOCKED):  # loaded already: nothing to save
            self.loader.exec_module(module)
            return
        self.finder.inside = threading.get_ident()
        try:
            self.loader.exec_module(module)
        finally:
            self.finder.inside = None


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
