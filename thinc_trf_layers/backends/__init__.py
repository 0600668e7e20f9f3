"""Kernels behind the layers, chosen by the Ops in use."""
