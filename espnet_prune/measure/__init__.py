"""Measurement: speed, memory and cost of the models and the pipeline (the CLIs diar_bench,
wavlm_bench, estimate_cost and the benchmark scripts are thin over it); figures in
BENCHMARKS.md beside this file."""
