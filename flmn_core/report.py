"""The paper's Tables 1 and 2 and training curves, regenerated from the files in checkpoints/.

    python -m flmn_core.report                               # print the Markdown tables
    python -m flmn_core.report --readme README.md            # rewrite README's results section in place
    python -m flmn_core.report --out-md results.md --figures figures/

Our rows come from flmn_core.evaluate's JSON (checkpoints/results/<name>-<dataset>.json), the curves from
the training logs (checkpoints/logs/<name>.jsonl), the published rows from flmn_core.paper: no number is
typed in by hand. A checkpoint without a result file gets a row saying "not evaluated".
"""

import argparse
import json
import math
import sys
from pathlib import Path

from plotly.offline import get_plotlyjs

from . import paper, viz, zoo
from .files import atomic_open, atomic_text

README_START = "<!-- results:start -->"
README_END = "<!-- results:end -->"
ORDINALS = {1: "1st", 2: "2nd", 3: "3rd"}
DATASET_SPLIT = {"omniglot": "test", "mnist": "mini"}  # the split evaluate writes for each table's data
SHIPPED_FOLDER = "checkpoints"  # how README and model cards name zoo's folder: relative to the repository root


class ReportError(Exception):
    """A results, log or README file cannot be used; the message says which and why."""


def located(path, root):
    """zoo's path of a file, moved under another checkpoint folder when root is given (zoo owns the layout)."""
    return path if root is None else Path(root) / path.relative_to(zoo.checkpoint_dir())


def load_result(name, dataset, root=None):
    """flmn_core.evaluate's result for a shipped checkpoint -> dict, or None when it was not evaluated.

    Raises ReportError for a file that is not a usable result of that dataset's held-out split."""
    path = located(zoo.result_path(name, dataset), root)
    if not path.is_file():
        return None
    try:
        result = json.loads(path.read_text())
        accuracy, ci95 = result["accuracy"], result["ci95"]
        split, episodes = result["split"], int(result["episodes"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ReportError(f"{path}: not a result of flmn_core.evaluate "
                          f"({error.__class__.__name__}: {error})") from None
    if result.get("dataset") != dataset or split != DATASET_SPLIT[dataset]:
        raise ReportError(f"{path}: holds {result.get('dataset')} ({split}), "
                          f"expected {dataset} ({DATASET_SPLIT[dataset]})")
    if len(accuracy) != len(ci95):
        raise ReportError(f"{path}: {len(accuracy)} accuracies but {len(ci95)} intervals")
    return {**result, "episodes": episodes}


def load_log(name, root=None):
    """The training log of a shipped checkpoint -> list of records ([] when there is none)."""
    path = located(zoo.log_path(name), root)
    return read_log(path) if path.is_file() else []


def read_log(path):
    """A training log (flmn_core.train's log.jsonl, or a shipped one) -> list of records.

    A broken last line (a run killed while writing) is ignored; a broken line before it raises ReportError."""
    try:
        lines = Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ReportError(f"{path}: cannot read it ({error})") from None
    records = []
    for number, line in enumerate(lines, start=1):
        try:
            records.append(json.loads(line))
        except ValueError:
            if number < len(lines):
                raise ReportError(f"{path}, line {number}: not JSON") from None
    return records


def load_logs(root=None, experiment=None):
    """{name: records} of the shipped checkpoints that have a training log (of one experiment if given)."""
    logs = {c.name: load_log(c.name, root) for c in zoo.CHECKPOINTS if experiment in (None, c.experiment)}
    return {name: log for name, log in logs.items() if log}


def percent(fraction, ci=None):
    """0.8561, 0.0031 -> "85.6 ± 0.3"; NaN -> "n/a"."""
    if fraction is None or math.isnan(fraction):
        return "n/a"
    if ci is None or math.isnan(ci):
        return f"{100 * fraction:.1f}"
    return f"{100 * fraction:.1f} ± {100 * ci:.1f}"


def markdown_table(header, rows):
    """A Markdown table from a header and rows of cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def instance_header(first, instances=paper.TABLE_INSTANCES):
    return list(first) + [ORDINALS.get(k, f"{k}th") for k in instances]


def published_row(row, instances=paper.TABLE_INSTANCES):
    """A published row: its numbers as printed, "–" where the source gives none (or we did not record it)."""
    experiment = f", Exp. {row.experiment}" if row.experiment else ""
    cells = [f"{row.accuracy[k]:.1f}" if k in row.accuracy else "–" for k in instances]
    return [f"{row.model}{experiment}", row.source] + cells


def _our_row(shipped, dataset, root, instances=paper.TABLE_INSTANCES):
    """One shipped checkpoint's row: accuracy ± 95% CI per instance, or why there is none."""
    label = f"{shipped.model.upper()}, Exp. {shipped.experiment} (`{shipped.name}`)"
    try:
        result = load_result(shipped.name, dataset, root)
    except ReportError as error:
        return [label, f"unreadable result: {error}"] + ["–"] * len(instances)
    if result is None:
        return [label, "not evaluated"] + ["–"] * len(instances)
    cells = [percent(result["accuracy"][k - 1], result["ci95"][k - 1]) if k <= len(result["accuracy"]) else "–"
             for k in instances]
    return [label, f"this project, {result['episodes']:,} episodes"] + cells


def table1_markdown(root=None):
    """The paper's Table 1: per-instance accuracy (%) on the held-out Omniglot characters, the published
    rows first, then each shipped checkpoint's (± 95% CI)."""
    rows = [published_row(r) for r in (*paper.TABLE1, paper.SANTORO)]
    rows += [_our_row(c, "omniglot", root) for c in zoo.CHECKPOINTS]
    return markdown_table(instance_header(("model", "source")), rows)


def table2_markdown(root=None):
    """The paper's Table 2: zero-shot miniMNIST (trained on Omniglot, tested on MNIST digits)."""
    rows = [published_row(r) for r in paper.TABLE2]
    rows += [_our_row(c, "mnist", root) for c in zoo.CHECKPOINTS]
    return markdown_table(instance_header(("model", "source")), rows)


def targets_markdown(root=None):
    """Issue 4's targets against what each checkpoint reached: "34.12 ≥ 33" when reached, "31.90 < 33" when not."""
    instances = sorted({k for t in paper.TARGETS for k in t.accuracy})
    rows = []
    for target in paper.TARGETS:
        for name in target.checkpoints:
            try:
                result = load_result(name, target.dataset, root)
            except ReportError as error:
                result, why = None, f"unreadable result: {error}"
            else:
                why = "not evaluated"
            if result is None:
                cells = [why] + [""] * (len(instances) - 1)
            else:
                cells = [against_goal(result, k, target.accuracy.get(k)) for k in instances]
            rows.append([target.name, f"`{name}`", target.dataset] + cells)
    return markdown_table(instance_header(("target", "checkpoint", "data"), instances), rows)


def against_goal(result, instance, goal):
    """One target cell: our accuracy at an instance compared with the goal (percent)."""
    if goal is None:
        return "–"
    ours = result["accuracy"][instance - 1] if instance <= len(result["accuracy"]) else math.nan
    if math.isnan(ours):
        return f"n/a (goal {goal:g})"
    # Two decimals, so that a number just under its goal never prints as equal to it.
    return f"{100 * ours:.2f} {'≥' if 100 * ours >= goal else '<'} {goal:g}"


def checkpoint_legend(root=None, link_cards=False):
    """One line per shipped checkpoint: its name and what it is; with link_cards, a link to its model card
    (as the README at the repository root reaches it) for each card that exists."""
    lines = []
    for c in zoo.CHECKPOINTS:
        card = located(zoo.card_path(c.name), root)
        link = f" ([model card]({SHIPPED_FOLDER}/{card.name}))" if link_cards and card.is_file() else ""
        lines.append(f"- `{c.name}`: {c.description}{link}")
    return "\n".join(lines)


def results_markdown(root=None):
    """The whole results section: Tables 1 and 2, the targets, the checkpoints' legend (with links to
    their model cards)."""
    return "\n\n".join([
        "_Generated by `python -m flmn_core.report` from checkpoints/results and flmn_core/paper.py; "
        "do not edit by hand._",
        "**Table 1: Omniglot, held-out characters.** Per-instance accuracy (%), 5 classes x 10 samples; "
        "our rows ± 95% confidence interval. Published cells the sources do not give "
        "(or we did not record) are \"–\".",
        table1_markdown(root),
        "**Table 2: zero-shot miniMNIST.** Trained on Omniglot, tested on MNIST digits (5 classes x 10 samples).",
        table2_markdown(root),
        "**Targets (issue 4).**",
        targets_markdown(root),
        checkpoint_legend(root, link_cards=True),
    ])


def figures(root=None):
    """Our counterparts of the paper's Figures 3-5, from the training logs:
    per-instance training accuracy against episodes for Experiment I and II, and the training loss."""
    return {
        "figure3-accuracy-exp1": viz.training_curves_figure(load_logs(root, "I"), (1, 2, 3, 10),
                                                            title="Training accuracy by instance, Experiment I"),
        "figure4-accuracy-exp2": viz.training_curves_figure(load_logs(root, "II"), (1, 2, 3, 10),
                                                            title="Training accuracy by instance, Experiment II"),
        "figure5-loss": viz.loss_curves_figure(load_logs(root), title="Loss, all runs"),
    }


def write_figures(folder, root=None, plotlyjs="cdn"):
    """Write the figures as HTML files into folder -> their paths.

    plotlyjs="cdn": the pages load plotly.js from the internet (small files); "directory": plotly.min.js
    is written beside them once, and they work offline."""
    folder = Path(folder)
    paths = []
    for name, fig in figures(root).items():
        path = folder / f"{name}.html"
        atomic_text(path, fig.to_html(include_plotlyjs=plotlyjs, full_html=True))
        paths.append(path)
    if plotlyjs == "directory":
        atomic_text(folder / "plotly.min.js", get_plotlyjs())
    return paths


def rewrite_readme(readme, section):
    """Replace what lies between README_START and README_END in the file with section, atomically.

    Every byte outside the markers stays as it was."""
    path = Path(readme)
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ReportError(f"{path}: cannot read it ({error})") from None
    starts, ends = text.count(README_START), text.count(README_END)
    if starts != 1 or ends != 1:
        raise ReportError(f"{path}: needs exactly one {README_START} and one {README_END} line "
                          f"(found {starts} and {ends})")
    head, rest = text.split(README_START)
    if README_END in head:
        raise ReportError(f"{path}: {README_END} comes before {README_START}")
    tail = rest.split(README_END)[1]
    with atomic_open(path, "wb") as f:
        f.write(f"{head}{README_START}\n{section.strip()}\n{README_END}{tail}".encode("utf-8"))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--checkpoint-dir", default=None, help="checkpoint folder (default: zoo's, checkpoints/)")
    parser.add_argument("--out-md", default=None, help="write the Markdown tables to this file")
    parser.add_argument("--readme", default=None, help=f"rewrite the section between {README_START} and "
                                                       f"{README_END} of this file")
    parser.add_argument("--figures", default=None, help="write Figures 3-5 as Plotly HTML into this folder")
    parser.add_argument("--plotlyjs", choices=("cdn", "directory"), default="cdn",
                        help="how the HTML figures get plotly.js: from the internet, or a file beside them")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    root = args.checkpoint_dir
    if root is not None and not Path(root).is_dir():
        sys.exit(f"error: --checkpoint-dir {root} is not a folder")
    try:
        section = results_markdown(root)
        if args.out_md:
            atomic_text(args.out_md, section + "\n")
        if args.readme:
            rewrite_readme(args.readme, section)
        if args.figures:
            for path in write_figures(args.figures, root, args.plotlyjs):
                print(f"wrote {path}", file=sys.stderr)
    except ReportError as error:
        sys.exit(f"error: {error}")
    if not (args.out_md or args.readme):
        print(section)
    return section


if __name__ == "__main__":
    main()
