"""Exit codes and the usage error of the command line: the bottom of cli/, importing nothing of OMIS."""
from __future__ import annotations

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A command cannot run as asked (missing settings, bad arguments): exit status 2."""
