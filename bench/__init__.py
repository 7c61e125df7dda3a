"""Benchmarks of jpq-hw (not tests): each module is a script, run from the repository root as
``python -m bench.NAME`` (those that import only ``jpq_hw`` also as ``python bench/NAME.py``); their
result tables are committed under ``bench/results/``. Code they share lives in :mod:`bench.common`
(and the FIR coefficient sets in :mod:`bench.fir_sets`)."""
