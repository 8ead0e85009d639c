"""What latent class papers report: SEs, G²/X², entropy, criteria, BLRT, selection, the summary."""
