"""`python -m functions COMMAND` (SPEC §6).

Layers, imports pointing down only: main.py (the dispatcher) imports the command modules
(functions/mail/commands.py, functions/alerts/commands.py,
functions/reports/commands.py); they import errors.py and
options.py, which import nothing of OMIS. Importing `functions.cli.errors` runs this file
first, so it imports nothing but errors.py (re-exported for `from ..cli import UsageError`).
"""
from .errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "UsageError"]
