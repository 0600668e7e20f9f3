"""``python -m thinc_trf_layers``: the command line (see ``thinc_trf_layers.cli``)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
