"""The command line of `flmn train`, built from the config dataclasses: every field of TrainConfig and of the
model configs is an option, with its type, help text and default, so a setting is declared once.
"""

import argparse
import dataclasses

from flmn_core.model.checkpoint import CheckpointError
from flmn_core.model.networks import MODELS
from flmn_core.training.config import RECIPES, TrainConfig, read_config_file
from flmn_core.training.devices import DEVICES

# Tiny settings of --dry-run: a few steps of a small model, enough to run every line of the loop.
DRY_RUN = dict(episodes=16, batch_size=4, log_every=8, val_every=8, val_episodes=8)
DRY_RUN_MODEL = dict(controller_size=16, memory_rows=8, word_size=8)


def option(name):
    return "--" + name.replace("_", "-")


def add_setting(group, field, default_text):
    """One option from a dataclass field: its type, its help text and the default it shows."""
    help_text = f"{field.metadata.get('help', '')} (default: {default_text})"
    if field.type is bool:
        group.add_argument(option(field.name), action=argparse.BooleanOptionalAction, default=None, help=help_text)
    else:
        group.add_argument(option(field.name), type=field.type, default=None, metavar=field.name.upper(), help=help_text)


def model_fields():
    """The fields of every model config, each once -> {name: (field, {model name: default})}."""
    fields = {}
    for name, (_, config_class) in MODELS.items():
        for field in dataclasses.fields(config_class):
            fields.setdefault(field.name, (field, {}))[1][name] = field.default
    return fields


def build_parser():
    p = argparse.ArgumentParser(prog="flmn train", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    run = p.add_argument_group("the run (flmn_core.training.config.TrainConfig; defaults: the papers')")
    run.add_argument("--model", choices=sorted(MODELS), default=None, help="the model (default: flmn)")
    for field in dataclasses.fields(TrainConfig):
        if field.name != "model":
            add_setting(run, field, field.default)
    model = p.add_argument_group("the model (flmn_core.model.networks.FLMNConfig / MANNConfig)")
    for name, (field, defaults) in model_fields().items():
        shown = ", ".join(f"{model}: {value}" for model, value in defaults.items())
        add_setting(model, field, shown if len(defaults) > 1 else f"{shown}; {next(iter(defaults))} only")
    process = p.add_argument_group("this process (not part of the run's config)")
    process.add_argument("--config", default=None, help="start from the TrainConfig of a run's config.json or a checkpoint")
    process.add_argument("--recipe", choices=sorted(RECIPES), default=None,
                         help="start from a named TrainConfig (flmn_core.training.config.RECIPES): authors-2017 is the FLMN "
                              "authors' released code")
    process.add_argument("--out", default="runs/flmn-exp1", help="run folder")
    process.add_argument("--resume", action="store_true", help="continue from OUT/last.pt (with --episodes, extend it)")
    process.add_argument("--warm-start", metavar="CHECKPOINT", default=None,
                         help="a new run that continues a shipped checkpoint: its weights, training config, episode "
                              "count and shipped log; the optimizer starts afresh (checkpoints ship without its state)")
    process.add_argument("--stop-after", type=int, default=None, metavar="EPISODES",
                         help="stop once this many episodes are trained (of all runs, a warm start's included), "
                              "saving last.pt as SIGTERM does, the schedule unchanged: at a validation episode "
                              "(a multiple of --val-every) it can be shipped with publish --weights last.pt")
    process.add_argument("--save-minutes", type=float, default=2.0, help="write last.pt this often (0: after every batch)")
    process.add_argument("--data-dir", default=None, help="data folder (default: $FLMN_DATA_DIR)")
    process.add_argument("--threads", type=int, default=None, help="torch threads per process (default: PyTorch's)")
    process.add_argument("--device", default="auto", help=f"where to train: {DEVICES}; under torchrun, cuda is the "
                                                          "GPU of each process's LOCAL_RANK (default: auto)")
    process.add_argument("--bf16", action="store_true",
                         help="run the forward pass under bfloat16 autocast (for GPUs that have it); the weights "
                              "and the memories stay float32")
    process.add_argument("--compile", action="store_true",
                         help="torch.compile the training step: about 2x faster after a few minutes of compiling")
    process.add_argument("--sample-ahead", action="store_true",
                         help="sample the training episodes in a second process, on another core, while the step "
                              "runs: the same episodes in the same order, sooner (one process only)")
    process.add_argument("--dry-run", action="store_true", help="a few steps on tiny settings, then exit")
    return p


def given_settings(args):
    """The settings given on the command line -> (model settings, run settings), each {name: value}."""
    values = {k: v for k, v in vars(args).items() if v is not None}
    model = {k: values[k] for k in model_fields() if k in values}
    run = {f.name: values[f.name] for f in dataclasses.fields(TrainConfig) if f.name != "model" and f.name in values}
    return model, run


def config_from_args(args, base=None):
    """The TrainConfig: `base` (defaults, or the --config file) with the given settings on top.
    Raises ValueError with a message for a setting the model lacks or a value out of range."""
    base = base or TrainConfig()
    model_values, run_values = given_settings(args)
    config_class = MODELS[args.model][1] if args.model else type(base.model)
    known = {f.name for f in dataclasses.fields(config_class)}
    for name in model_values:
        if name not in known:
            raise ValueError(f"{option(name)} is not a setting of the {args.model or base.model_name} model")
    start = dataclasses.asdict(base.model) if config_class is type(base.model) else {}
    model = config_class(**{**start, **model_values})
    return dataclasses.replace(base, model=model, **run_values)


def parse(argv=None):
    """argv -> (args, TrainConfig or None when resuming); exits with a message on a bad option."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be at least 1, not {args.threads}")
    if not args.save_minutes >= 0:  # 0 saves after every batch (the interruption tests use it)
        parser.error(f"--save-minutes must be 0 or more, not {args.save_minutes}")
    if args.stop_after is not None and args.stop_after < 1:
        parser.error(f"--stop-after must be at least 1, not {args.stop_after}")
    if args.resume:
        model_values, run_values = given_settings(args)
        changed = (sorted(set(model_values) | set(run_values) - {"episodes"}) + (["config"] if args.config else [])
                   + (["recipe"] if args.recipe else []))
        if changed or args.model or args.warm_start:
            parser.error("a resumed run keeps its settings (only --episodes may extend it); drop "
                         + ", ".join(option(n) for n in changed or ["model" if args.model else "warm_start"]))
        return args, None
    if args.warm_start and (args.config or args.recipe):
        parser.error("--warm-start takes the checkpoint's training config: drop --config and --recipe")
    if args.config and args.recipe:
        parser.error("give one of --config and --recipe, the settings to start from")
    try:
        base = RECIPES.get(args.recipe)
        if args.config or args.warm_start:
            base = read_config_file(args.config or args.warm_start)
        config = config_from_args(args, base)
        if args.dry_run:
            config = dataclasses.replace(config, model=dataclasses.replace(config.model, **DRY_RUN_MODEL), **DRY_RUN)
    except (ValueError, CheckpointError) as error:
        parser.error(str(error))
    return args, config
