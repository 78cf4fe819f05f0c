"""Training stage: scenes, WMMSE, models, training, evaluation."""
