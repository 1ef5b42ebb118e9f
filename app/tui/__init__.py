"""The Textual TUI: `stella tui` (or `stella` alone on a terminal), over the same services as the CLI."""
