"""One public layer per module; the public API is re-exported from ``thinc_trf_layers``."""
