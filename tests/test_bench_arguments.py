"""The bench scripts refuse a bad value on their command line with argparse's usage message naming the option
(exit status 2), before any benchmark starts. Each script's main runs with its parsing watched: a value that
got through would end the call with Parsed instead, so no benchmark ever runs here."""

import argparse
import importlib

import pytest

from flmn_core.model import zoo


class Parsed(Exception):
    """The command line was accepted."""


BAD = [
    ("drawings_vs_scans", ["--episodes", "0"], "--episodes"),
    ("drawings_vs_scans", ["--seed", str(2**70)], "--seed"),
    ("drawings_vs_scans", ["--pens", "0"], "--pens"),
    ("drawings_vs_scans", ["--scales", "nan"], "--scales"),
    ("drawings_vs_scans", ["--checkpoint", "missing.pt"], "--checkpoint"),
    ("drawings_vs_scans", ["--data-dir", "/no/such/folder"], "--data-dir"),
    ("encoder_shift", ["--characters", "0"], "--characters"),
    ("encoder_shift", ["--shift", "400"], "--shift"),
    ("encoder_shift", ["--checkpoint", "README.md"], "--checkpoint"),
    ("sample_ahead", ["--rounds", "0"], "--rounds"),
    ("sample_ahead", ["--steps", "-1"], "--steps"),
    ("sample_ahead", ["--threads", "0"], "--threads"),
    ("sample_ahead", ["--configs", "missing.pt"], "--configs"),
    ("two_cores", ["--rounds", "0"], "--rounds"),
    ("two_cores", ["--steps", "0"], "--steps"),
    ("two_cores", ["--configs", "README.md"], "--configs"),
    ("whole_runs", ["--rounds", "0"], "--rounds"),
    ("whole_runs", ["--episodes", "0"], "--episodes"),
    ("whole_runs", ["--config", "missing.pt"], "--config"),
    ("train_speed", ["--batches", "0"], "--batches"),
    ("train_speed", ["--rounds", "0"], "--rounds"),
    ("train_speed", ["--steps", "0"], "--steps"),
    ("time_to_accuracy", ["--instance", "0"], "--instance"),
    ("time_to_accuracy", ["--instance", "11"], "--instance"),
    ("time_to_accuracy", ["--target", "2"], "--target"),
    ("time_to_accuracy", ["no-such-log.jsonl"], "logs"),
    ("episode_length", ["--rounds", "0"], "--rounds"),
    ("episode_length", ["--config", "missing.pt"], "--config"),
    ("app_latency", ["--drawings", "0"], "--drawings"),
    ("app_latency", ["--classes", "1"], "--classes"),
    ("app_latency", ["--seed", "-1"], "--seed"),
]


@pytest.fixture
def watched_parsing(monkeypatch):
    """argparse parses as always, then raises Parsed instead of letting main go on."""
    parse_args = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, *args, **kwargs):
        parse_args(self, *args, **kwargs)
        raise Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)


@pytest.mark.parametrize("script, argv, option", BAD, ids=[f"{s} {' '.join(a)}" for s, a, _ in BAD])
def test_a_bad_value_gets_a_usage_message_naming_its_option(watched_parsing, capsys, script, argv, option):
    main = importlib.import_module(f"bench.{script}").main
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    assert f"argument {option}" in capsys.readouterr().err


@pytest.mark.parametrize("script", sorted({script for script, _, _ in BAD}))
def test_the_defaults_are_accepted(watched_parsing, script):
    """The scripts' own defaults pass the same checks (with the shipped checkpoints and a data folder)."""
    argv = ["--data-dir", "."] if script in ("drawings_vs_scans", "encoder_shift", "app_latency") else []
    with pytest.raises(Parsed):
        importlib.import_module(f"bench.{script}").main(argv)
    assert zoo.available()
