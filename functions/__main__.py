"""Entry point of `python -m functions`."""
import sys

from .cli import main

sys.exit(main())
