"""Translations between the outside world and the core model: input formats and export profiles."""
