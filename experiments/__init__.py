"""Experiment machinery apart from the library: the paper's rank grid (jobs, runner, report,
carried cells, timing) and the SVD-truncation study. It uses ``tinyrrm.training``; the library
never imports it."""
