"""Speed benchmarks: scripts that print their figures. Run them from the repository root as modules,
e.g. `python -m bench.train_speed`, so that flmn_core is importable without editing sys.path."""
