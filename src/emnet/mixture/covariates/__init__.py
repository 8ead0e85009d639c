"""Latent class regression: covariates predicting class membership (one-step, BCH, ML)."""
