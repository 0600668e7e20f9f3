"""``python -m thinc_trf_layers``: the command line (see ``thinc_trf_layers.cli``)."""
import sys

if __name__ == "__main__":
    from .cli import main  # Ctrl-C until main() runs: see _cli_start

    sys.exit(main())
