"""Tools for testing layers (docs/testing.md): a finite-difference gradient checker, and
Hypothesis strategies in ``thinc_trf_layers.testing.strategies`` (needs Hypothesis)."""

from .gradcheck import GradientCheckError, check_gradients

__all__ = ["check_gradients", "GradientCheckError"]
