"""Tools for testing layers: a finite-difference gradient checker and Hypothesis strategies.

``strategies`` needs Hypothesis (the ``test`` extra); import it as
``thinc_trf_layers.testing.strategies``.
"""
from .gradcheck import GradientCheckError, check_gradients

__all__ = ["check_gradients", "GradientCheckError"]
