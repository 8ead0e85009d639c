"""The estimators users call: BernoulliMixture, CategoricalMixture and LatentClassModel."""
