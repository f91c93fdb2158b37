"""Entry point of `python -m functions`."""
import sys

from .cli.main import main

sys.exit(main())
