"""The EM loop every estimator shares: restarts, SQUAREM, weights, convergence, starts, input checks."""
