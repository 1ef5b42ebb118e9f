"""The local HTTP API (`stella serve`): FastAPI routes over the same services as the CLI and the TUI.

Only this package imports FastAPI, Starlette and uvicorn, and only `stella serve` imports this package.
"""
