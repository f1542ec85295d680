"""Training and evaluation: TrainConfig and its command line, the loop, data-parallel plumbing, evaluation,
metrics, the run log.

Imports flmn_core.model and flmn_core.data.sources.
"""
