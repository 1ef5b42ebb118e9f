"""Surfaces of the Export Center: the CLI (and, later, the TUI). Only this package imports textual/rich."""
