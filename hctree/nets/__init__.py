"""Network building blocks (generators, discriminators, classifiers) per resolution."""
