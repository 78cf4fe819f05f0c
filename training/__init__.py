"""Training stage: scenes, WMMSE, models, training, rank grid."""
