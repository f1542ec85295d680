"""Results: the papers' numbers, the project's targets, README's tables (report), model cards, publishing a run,
their figures.

Imports the layers below it (model, data, training), never flmn_core.interactive.episode.
"""
