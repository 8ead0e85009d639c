"""Where the E-step runs: numpy/numba, torch (CPU/CUDA), Dask, and stepwise (online) EM."""
