"""Build the optional compiled kernels; everything else is in pyproject.toml.

``thinc_trf_layers.backends._segments`` is a Cython extension (segment sum / max and
their gradients for NumpyOps). It is optional: if it cannot be built (no C compiler), the
package installs without it and the pooling layers use their NumPy code instead.
"""
from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "thinc_trf_layers.backends._segments",
            sources=["thinc_trf_layers/backends/_segments.pyx"],
            include_dirs=["thinc_trf_layers/backends"],
            depends=["thinc_trf_layers/backends/_segments.h", "thinc_trf_layers/backends/_segments_body.h"],
            extra_compile_args=["-O3"] if __import__("sys").platform != "win32" else [],
            optional=True,
        )
    ]
)
