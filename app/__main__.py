"""`python -m app`: the same entry point as the `stella` console script."""

from app.cli import run

run()
