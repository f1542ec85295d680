"""The models: the papers' memory equations, the networks and their configs, retrieval, checkpoints, the shipped zoo.

The lowest layer: it imports no other part of flmn_core (but flmn_core.files).
"""
