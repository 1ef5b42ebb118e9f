"""Domain core of the Export Center: store, models, import pipeline, keys.

Nothing here imports ``app``, ``adapters`` or ``verify``, and nothing here prints or exits:
failures are raised as :class:`core.errors.StellaError` subclasses and progress goes through
:class:`core.progress.Observer`.
"""

__version__ = "0.1.0"
