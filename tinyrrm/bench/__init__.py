"""Benchmarks of every stage (``make bench``): training, export, generated C, firmware."""
