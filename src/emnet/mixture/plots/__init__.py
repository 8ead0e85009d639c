"""Figures of fitted models: profiles, covariate effects, parameters and traces (one ax=/path= rule)."""
