"""Code generation: an export folder -> C for one core, its targets and host build."""
