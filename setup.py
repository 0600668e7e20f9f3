"""Build the optional compiled kernels; everything else is in pyproject.toml.

``thinc_trf_layers.backends._kernels`` is a Cython extension (pooling sums and maxima
and their gradients, and a row-wise concatenation, for NumpyOps). It is optional: if it
cannot be built (no C compiler), the package installs without it and the layers use
their NumPy code instead.
"""
from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "thinc_trf_layers.backends._kernels",
            sources=["thinc_trf_layers/backends/_kernels.pyx"],
            include_dirs=["thinc_trf_layers/backends"],
            depends=["thinc_trf_layers/backends/_kernels.h", "thinc_trf_layers/backends/_pieces.h"],
            # -fno-trapping-math lets GCC turn the comparisons in the loops into vector selects
            extra_compile_args=["-O3", "-fno-trapping-math"] if __import__("sys").platform != "win32" else [],
            optional=True,
        )
    ]
)
