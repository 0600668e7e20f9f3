"""``python -m thinc_trf_layers``: the command line (see ``thinc_trf_layers.cli``)."""

import sys

if __name__ == "__main__":
    from .cli import main

    sys.exit(main())
