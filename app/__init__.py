"""Surfaces of the Export Center: the CLI and the TUI. Only this package imports textual/rich."""
