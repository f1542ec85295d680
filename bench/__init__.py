"""Speed benchmarks: scripts that print their figures; and, beside bench.app_latency whose real server and
browser it shares, bench.screenshots, which takes the README's pictures of the app. Run them from the
repository root as modules, e.g. `python -m bench.train_speed`, so that flmn_core is importable without
editing sys.path."""
