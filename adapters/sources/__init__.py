"""Source adapters: one module per input format (``registry`` lists them in detection order)."""
