"""Compiled (numba) and pure log-domain kernels of the E and M steps."""
