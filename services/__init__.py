"""Workflows a user can start, one function each, with typed inputs and typed results.

The surfaces (``app.cli`` commands, the Textual TUI, the local API) parse what the user gave, call one function
here and draw its result. Nothing in this package prints, exits or imports a surface library; it raises
:class:`core.errors.StellaError` subclasses and reports progress through :mod:`core.progress`.

Layers: ``app -> services -> adapters | verify -> core`` (enforced by import-linter contracts in ``pyproject.toml``).
"""
