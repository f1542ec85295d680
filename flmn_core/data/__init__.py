"""The data: Omniglot and MNIST from their official files, the normalisation of a drawing, episodes (x_t, y_{t-1}),
batches, generated glyphs and real pen strokes.

Imports flmn_core.model only.
"""
