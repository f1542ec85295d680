"""The `flmn` command (also `python -m flmn_core`): one entry point, one subcommand per tool.

    flmn train --config checkpoints/flmn-conv.pt --out runs/again     train (flmn_core.training.train)
    flmn evaluate --checkpoint checkpoints/flmn-conv.pt --classes 5    evaluate (flmn_core.training.evaluate)
    flmn publish --run runs/again --name my-flmn                        ship a run (flmn_core.results.publish)
    flmn report --readme README.md                                     regenerate the results (flmn_core.results.report)
    flmn example                                                       rewrite the app's example episode

`flmn COMMAND --help` lists a command's options. Each command's module is imported only when it runs, so
`flmn --help` answers at once.
"""

import importlib
import sys

# name -> (module with main(argv), what it does)
COMMANDS = {
    "train": ("flmn_core.training.train", "train FLMN or MANN on Omniglot episodes (resumable)"),
    "evaluate": ("flmn_core.training.evaluate", "per-instance accuracy and retrieval of a checkpoint"),
    "publish": ("flmn_core.results.publish", "ship a run: weights, evaluation results, log and model card"),
    "report": ("flmn_core.results.report", "regenerate the results tables and figures from checkpoints/"),
    "example": ("flmn_core.interactive.examples", "rewrite the app's example episode (assets/)"),
}


def usage():
    """The command's help: what it is, then each subcommand in a line."""
    width = max(map(len, COMMANDS))
    lines = ["usage: flmn COMMAND [options]    (the same: python -m flmn_core COMMAND [options])", "",
             "FLMN (Mureja et al. 2017) and MANN (Santoro et al. 2016): train, evaluate and publish them.", "",
             "commands:"]
    lines += [f"  {name:<{width}}  {what}" for name, (_, what) in COMMANDS.items()]
    lines += ["", "`flmn COMMAND --help` lists a command's options."]
    return "\n".join(lines)


def main(argv=None):
    """Run the subcommand argv[0] with the rest of argv -> its exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"flmn: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    importlib.import_module(COMMANDS[name][0]).main(rest)
    return 0
