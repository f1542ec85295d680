"""The paper's Tables 1 and 2, retrieval, the project's targets and the training curves, regenerated from
the files in checkpoints/.

    flmn report                               # print the Markdown tables
    flmn report --readme README.md --results docs/results.md   # rewrite both files' tables in place
    flmn report --out-md results.md --figures figures/

Our rows come from flmn_core.training.evaluate's JSON (checkpoints/results/<name>-<dataset>.json), the curves from
the training logs (checkpoints/logs/<name>.jsonl, read with flmn_core.training.runlog), the published rows from
flmn_core.results.paper and the goals from flmn_core.results.targets: no number is typed in by hand. A checkpoint without a
result file gets a row saying "not evaluated". The model cards (flmn_core.results.cards) build on the same readers
and cells, so a number looks the same in README, the cards and the app.
"""

import argparse
import json
import math
import sys
from pathlib import Path

from plotly.offline import get_plotlyjs

from flmn_core.data.sources import MINI_MNIST_PER_DIGIT, TEST_CHARACTERS
from flmn_core.files import atomic_open, atomic_text
from flmn_core.model import zoo
from flmn_core.results import figures as result_figures
from flmn_core.results import markdown, paper, targets
from flmn_core.training import runlog

README_START = "<!-- results:start -->"
README_END = "<!-- results:end -->"
# The split flmn_core.training.evaluate writes for each dataset
DATASET_SPLIT = {"omniglot": "test", "mnist": "mini", "mnist-normalised": "mini"}
# Short, for column headers
DATASET_NAMES = {"omniglot": "Omniglot", "mnist": "miniMNIST", "mnist-normalised": "miniMNIST, normalised"}
DATASET_TITLES = {
    "omniglot": f"Omniglot, the {TEST_CHARACTERS} held-out test characters (never seen in training or model selection)",
    "mnist": f"miniMNIST, zero-shot (trained on Omniglot only; {MINI_MNIST_PER_DIGIT} test images per digit, "
             "downscaled to 20 x 20 as the paper does; the mean over 20 such subsets, and its interval)",
    "mnist-normalised": "miniMNIST, normalised: the same digits, zero-shot, each first brought to Omniglot's size, "
                        "position and pen width as the app reads a drawing (flmn_core.data.normalise; the paper "
                        "only downscales)",
}
# The FLMN paper's table of each dataset
PAPER_TABLES = {"omniglot": "Table 1", "mnist": "Table 2", "mnist-normalised": "Table 2"}
# Evaluate's retrieval measures that the tables show: header, and (scale, decimals) of their cells.
RETRIEVAL_COLUMNS = {
    "top_hit": ("most-read row holds the class (%)", 100, 1),
    "mass": ("read mass on the class's rows", 1, 3),
}
RETRIEVAL_MEANING = ("Over the steps whose class was shown before (2nd and later instances): how often the memory "
                     "row read most holds an earlier drawing of the step's class, and the read weight (0 to 1) on "
                     "the rows that hold it")


class ReportError(Exception):
    """A results, log or README file cannot be used; the message says which and why."""


# ---- reading the shipped files ------------------------------------------------------------------------

def load_result(name, dataset, root=None, classes=zoo.PAPERS_CLASSES, memory_rows=None):
    """flmn_core.training.evaluate's result for a shipped checkpoint at a class count (and with a memory of
    memory_rows rows, for a zoo memory probe) -> dict, or None when it was not evaluated.

    Raises ReportError for a file that is not a usable result of that dataset's held-out split at that class
    count. Results written before retrieval was measured have no "retrieval"; their retrieval cells read "not
    measured"."""
    path = zoo.result_path(name, dataset, root, classes, memory_rows)
    return read_result(path, dataset, classes, memory_rows) if path.is_file() else None


def read_result(path, dataset, classes=zoo.PAPERS_CLASSES, memory_rows=None, mnist_half="report"):
    """The result file at path, checked to be of that dataset's held-out split, class count, (if given)
    memory size and, for miniMNIST, half of MNIST's digits -> dict; ReportError when it is not."""
    try:
        result = json.loads(path.read_text())
        accuracy, ci95 = result["accuracy"], result["ci95"]
        split, episodes = result["split"], int(result["episodes"])
        retrieval = result.get("retrieval")
        if retrieval is not None and not all(isinstance(retrieval[key], (int, float)) for measure in RETRIEVAL_COLUMNS
                                             for key in (measure, f"{measure}_ci95")):
            raise TypeError(f"retrieval holds something other than numbers: {retrieval}")
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ReportError(f"{path}: not a result of flmn_core.training.evaluate "
                          f"({error.__class__.__name__}: {error})") from None
    if result.get("dataset") != dataset or split != DATASET_SPLIT[dataset]:
        raise ReportError(f"{path}: holds {result.get('dataset')} ({split}), "
                          f"expected {dataset} ({DATASET_SPLIT[dataset]})")
    if len(accuracy) != len(ci95):
        raise ReportError(f"{path}: {len(accuracy)} accuracies but {len(ci95)} intervals")
    if result.get("classes", zoo.PAPERS_CLASSES) != classes:
        raise ReportError(f"{path}: holds episodes of {result.get('classes')} classes, expected {classes}")
    if memory_rows is not None and result.get("memory_rows") != memory_rows:
        raise ReportError(f"{path}: holds a memory of {result.get('memory_rows')} rows, expected {memory_rows}")
    if dataset != "omniglot" and result.get("mnist_half", "report") != mnist_half:
        raise ReportError(f"{path}: holds digits of MNIST's {result.get('mnist_half')} half, expected the "
                          f"{mnist_half} half")
    return {**result, "episodes": episodes}


def selection_candidates():
    """What can be chosen on the digits kept for choices: the shipped checkpoints, then the probes that try a
    choice made for MNIST (zoo Probe.selects) -> [name]."""
    return [c.name for c in zoo.CHECKPOINTS] + [p.name for p in zoo.PROBES + zoo.FOLLOW_UPS if p.selects]


def selection_results(root=None):
    """The candidates' miniMNIST results on the digits kept for choices (zoo.selection_path) -> {name: result},
    in selection_candidates' order, for those that have one."""
    found = {}
    for name in selection_candidates():
        path = zoo.selection_path(name, root)
        if path.is_file():
            found[name] = read_result(path, "mnist", mnist_half="select")
    return found


def selection_markdown(root=None):
    """How the miniMNIST checkpoint was chosen: every candidate on the digits kept for choices -> Markdown."""
    shipped = {c.name: c for c in zoo.CHECKPOINTS}
    rows = [[our_label(shipped[name]) if name in shipped else f"run `{name}` (its best.pt, not shipped)",
             episodes_text(result), *accuracy_cells(result["accuracy"], result["ci95"], (1, 2, 10))]
            for name, result in selection_results(root).items()]
    return markdown.table(["candidate", "evaluated", "1st", "2nd", "10th"], rows)


def episodes_text(result):
    """How many episodes a result is of: "10,000 episodes", or for miniMNIST "10,000 episodes over 20 subsets"."""
    subsets = result.get("subsets")
    return f"{result['episodes']:,} episodes" + (f" over {subsets} subsets" if subsets else "")


def result_or_why(name, dataset, root=None, classes=zoo.PAPERS_CLASSES, memory_rows=None):
    """(result, None), or (None, why there is none: "not evaluated" or "unreadable result: ...")."""
    try:
        result = load_result(name, dataset, root, classes, memory_rows)
    except ReportError as error:
        return None, f"unreadable result: {error}"
    return (result, None) if result is not None else (None, "not evaluated")


def load_log(name, root=None):
    """The training log of a shipped checkpoint -> list of records ([] when there is none)."""
    path = zoo.log_path(name, root)
    try:
        return runlog.read(path)
    except (OSError, UnicodeDecodeError) as error:
        raise ReportError(f"{path}: cannot read it ({error})") from None


def load_logs(root=None, experiment=None):
    """{name: records} of the shipped checkpoints that have a training log (of one experiment if given)."""
    logs = {c.name: load_log(c.name, root) for c in zoo.CHECKPOINTS if experiment in (None, c.experiment)}
    return {name: log for name, log in logs.items() if log}


# ---- cells --------------------------------------------------------------------------------------------

def instance_header(first, instances=paper.TABLE_INSTANCES):
    """Header cells: the first ones, then "1st", "2nd", ... for the instances."""
    return list(first) + [markdown.ordinal(k) for k in instances]


def accuracy_cells(accuracy, ci95=None, instances=paper.TABLE_INSTANCES):
    """Per-instance accuracies (fractions, index k - 1 for instance k) -> "33.1 ± 0.9" cells (without
    intervals when ci95 is None); "–" at an instance past the list."""
    return [markdown.percent(accuracy[k - 1], ci95[k - 1] if ci95 is not None else None)
            if k <= len(accuracy) else markdown.MISSING for k in instances]


def retrieval_cells(retrieval):
    """Evaluate's (or a validation record's) "retrieval" dict -> one cell per RETRIEVAL_COLUMNS, "± 95% CI";
    "not measured" for each when there is none."""
    if retrieval is None:
        return ["not measured"] * len(RETRIEVAL_COLUMNS)
    return [markdown.number(retrieval[measure], retrieval.get(f"{measure}_ci95"), scale, digits)
            for measure, (_, scale, digits) in RETRIEVAL_COLUMNS.items()]


def published_row(row, instances=paper.TABLE_INSTANCES):
    """A published row: its numbers as printed, "–" where the source gives none (or we did not record it)."""
    experiment = f", Exp. {row.experiment}" if row.experiment else ""
    cells = [f"{row.accuracy[k]:.1f}" if k in row.accuracy else markdown.MISSING for k in instances]
    return [f"{row.model}{experiment}", row.source] + cells


def goal_cell(shown, goal, digits):
    """One target cell, both in the units shown: "34.12 ≥ 33" when reached, "31.90 < 33" when not; the value
    alone when the target only reports it (goal None); "n/a (goal 33)" when the value is NaN."""
    if math.isnan(shown):
        return f"n/a (goal {goal:g})" if goal is not None else "n/a"
    if goal is None:
        return f"{shown:.{digits}f}"
    # More decimals than the tables', so that a number just under its goal never prints as equal to it.
    return f"{shown:.{digits}f} {'≥' if shown >= goal else '<'} {goal:g}"


def accuracy_goal_cells(target, result, instances=targets.TARGET_INSTANCES):
    """A target's accuracy goals against a result, one cell per instance ("–" where it sets none)."""
    cells = []
    for k in instances:
        if k not in target.accuracy:
            cells.append(markdown.MISSING)
        else:
            ours = result["accuracy"][k - 1] if k <= len(result["accuracy"]) else math.nan
            cells.append(goal_cell(100 * ours, target.accuracy[k], 2))
    return cells


def retrieval_goal_cells(target, result):
    """A target's retrieval goals against a result, one cell per RETRIEVAL_COLUMNS ("–" where it sets
    nothing, "not measured" where the result lacks retrieval)."""
    retrieval, cells = result.get("retrieval"), []
    for measure, (_, scale, digits) in RETRIEVAL_COLUMNS.items():
        if measure not in target.retrieval:
            cells.append(markdown.MISSING)
        elif retrieval is None:
            cells.append("not measured")
        else:
            goal = target.retrieval[measure]
            cells.append(goal_cell(scale * retrieval[measure], None if goal is None else scale * goal, digits + 1))
    return cells


def target_header(first):
    """The header of a targets table: the first cells, the targets' instances, the retrieval measures."""
    return instance_header(first, targets.TARGET_INSTANCES) + [header for header, _, _ in RETRIEVAL_COLUMNS.values()]


# ---- the tables ---------------------------------------------------------------------------------------

def our_label(shipped):
    """How a shipped checkpoint is named in a table: "FLMN, Exp. I (`flmn-exp1`)"."""
    return f"{shipped.model.upper()}, Exp. {shipped.experiment} (`{shipped.name}`)"


def accuracy_markdown(dataset, root=None, instances=paper.TABLE_INSTANCES, intervals=True, classes=zoo.PAPERS_CLASSES):
    """A dataset's per-instance accuracy table (%) at a class count: the published rows (paper.published)
    first, then each shipped checkpoint's measured there (± 95% CI unless intervals=False), or why it has none."""
    rows = [published_row(r, instances) for r in paper.published(dataset, classes)]
    for shipped in (c for c in zoo.CHECKPOINTS if (dataset, classes) in zoo.evaluations(c)):
        result, why = result_or_why(shipped.name, dataset, root, classes)
        if result is None:
            rows.append([our_label(shipped), why] + [markdown.MISSING] * len(instances))
        else:
            rows.append([our_label(shipped), f"this project, {episodes_text(result)}"]
                        + accuracy_cells(result["accuracy"], result["ci95"] if intervals else None, instances))
    return markdown.table(instance_header(("model", "source"), instances), rows)


def table1_markdown(root=None):
    """The paper's Table 1: held-out Omniglot characters."""
    return accuracy_markdown("omniglot", root)


def table2_markdown(root=None):
    """The paper's Table 2: zero-shot miniMNIST (trained on Omniglot, tested on MNIST digits)."""
    return accuracy_markdown("mnist", root)


def retrieval_markdown(root=None):
    """Retrieval of each shipped checkpoint on every dataset (± 95% CI), or why there is none."""
    header = ["model"] + [f"{DATASET_NAMES[dataset]}: {title}" for dataset in zoo.DATASETS
                          for title, _, _ in RETRIEVAL_COLUMNS.values()]
    rows = []
    for shipped in zoo.CHECKPOINTS:
        cells = [our_label(shipped)]
        for dataset in zoo.DATASETS:
            result, why = result_or_why(shipped.name, dataset, root)
            cells += retrieval_cells(result.get("retrieval")) if result else [why] * len(RETRIEVAL_COLUMNS)
        rows.append(cells)
    return markdown.table(header, rows)


PRESSURE_MEASURES = ("Over the steps whose class was shown before: how often the most-read row holds the class, the "
                     "read weight on the class's rows, and how often no row holds the class any more (every row "
                     "written with it was overwritten or cleared); ± 95% confidence interval.")
PRESSURE_MEANING = ("Omniglot's held-out characters with more classes per episode, for the checkpoints measured "
                    "at several class counts: 10 drawings of each class, so an episode of C classes has 10C steps "
                    f"for a memory of N rows. {PRESSURE_MEASURES}")
PRESSURE_COLUMNS = {"top_hit": ("most-read row holds the class (%)", 100, 1), "mass": ("read mass", 1, 3),
                    "lost": ("class no longer in memory (%)", 100, 1)}


def pressure_markdown(root=None):
    """For each shipped checkpoint measured at several class counts: its memory's rows, and at each count the
    2nd and 10th instance and retrieval (PRESSURE_COLUMNS) on Omniglot."""
    header = ["model", "memory rows", "classes", "steps", "2nd", "10th"] + [h for h, _, _ in PRESSURE_COLUMNS.values()]
    rows = []
    for shipped in (c for c in zoo.CHECKPOINTS if len(c.classes) > 1):
        for classes in shipped.classes:
            result, why = result_or_why(shipped.name, "omniglot", root, classes)
            if result is None:
                rows.append([our_label(shipped), markdown.MISSING, str(classes), str(10 * classes), why]
                            + [markdown.MISSING] * (len(header) - 5))
                continue
            rows.append([our_label(shipped), memory_rows_text(shipped.model, result.get("memory_rows")), str(classes),
                         str(10 * classes)] + pressure_cells(result))
    return markdown.table(header, rows)


def pressure_cells(result):
    """A result's 2nd and 10th instance and its PRESSURE_COLUMNS, as table cells."""
    retrieval = result.get("retrieval") or {}
    return (accuracy_cells(result["accuracy"], result["ci95"], (2, 10))
            + [markdown.number(retrieval[m], retrieval.get(f"{m}_ci95"), scale, digits) if m in retrieval
               else "not measured" for m, (_, scale, digits) in PRESSURE_COLUMNS.items()])


def memory_rows_text(model, memory_rows):
    """A memory's size as a table reads it: an FLMN's rows are shared out between its feature and label
    memories ("64 + 64"), a MANN's are one memory ("128")."""
    if memory_rows is None:
        return markdown.MISSING
    return f"{memory_rows // 2} + {memory_rows // 2}" if model == "flmn" else str(memory_rows)


def targets_markdown(root=None):
    """The project's targets against what each checkpoint reached."""
    rows = []
    for target in targets.TARGETS:
        for name in target.checkpoints:
            result, why = result_or_why(name, target.dataset, root, target.classes)
            width = len(targets.TARGET_INSTANCES) + len(RETRIEVAL_COLUMNS)
            if result is None:
                cells = [why] + [""] * (width - 1)
            else:
                cells = accuracy_goal_cells(target, result) + retrieval_goal_cells(target, result)
            rows.append([target.name, f"`{name}`", DATASET_NAMES[target.dataset]] + cells)
    return markdown.table(target_header(("target", "checkpoint", "data")), rows)


def checkpoint_legend(root=None, link_cards=False, folder=zoo.FOLDER):
    """One line per shipped checkpoint: its name and what it is; with link_cards, a link to its model card
    (the cards' folder as the file the legend goes into reaches it) for each card that exists."""
    lines = []
    for c in zoo.CHECKPOINTS:
        card = zoo.card_path(c.name, root)
        link = f" ([model card]({folder}/{card.name}))" if link_cards and card.is_file() else ""
        lines.append(f"- `{c.name}`: {c.description}{link}")
    return "\n".join(lines)


# README's tables in short: (dataset, classes) -> the instances shown.
SUMMARY_INSTANCES = {("omniglot", 5): (1, 2, 3, 10), ("mnist", 5): (1, 2, 10), ("omniglot", 15): (1, 2, 3, 10)}


def table_title(dataset, classes):
    """A table's bold title: the paper's table and the data, and the class count when it is not the papers'."""
    if classes == zoo.PAPERS_CLASSES:
        return f"**{PAPER_TABLES[dataset]}: {DATASET_TITLES[dataset]}.**"
    return f"**{DATASET_TITLES[dataset]}, {classes} classes x 10 drawings per episode.**"


def many_classes():
    """The (dataset, classes) of the shipped results beyond the papers' 5 classes, in table order."""
    found = {evaluation for c in zoo.CHECKPOINTS for evaluation in zoo.evaluations(c)}
    return sorted((e for e in found if e[1] != zoo.PAPERS_CLASSES), key=lambda e: (e[1], zoo.DATASETS.index(e[0])))


def summary_markdown(root=None):
    """README's results in short: Tables 1 and 2 (and 15 classes) at a few instances, without intervals, and the
    legend."""
    parts = [f"_Generated by `flmn report` from {zoo.FOLDER}/; the full tables: docs/results.md._"]
    for (dataset, classes), instances in SUMMARY_INSTANCES.items():
        if classes == zoo.PAPERS_CLASSES or (dataset, classes) in many_classes():
            parts += [table_title(dataset, classes),
                      accuracy_markdown(dataset, root, instances, intervals=False, classes=classes)]
    parts.append(checkpoint_legend(root, link_cards=True))
    return "\n\n".join(parts)


def results_markdown(root=None):
    """The whole results section (docs/results.md): Tables 1 and 2, retrieval, the targets, the checkpoints'
    legend (with links to their model cards)."""
    parts = [f"_Generated by `flmn report` from {zoo.FOLDER}/, flmn_core/results/paper.py and "
             "flmn_core/results/targets.py; do not edit by hand._"]
    for dataset, classes in [(d, zoo.PAPERS_CLASSES) for d in zoo.DATASETS] + many_classes():
        parts += [f"{table_title(dataset, classes)} Per-instance accuracy (%); our rows ± 95% confidence interval. "
                  f"Published cells the sources do not give (or we did not record) are \"{markdown.MISSING}\".",
                  accuracy_markdown(dataset, root, classes=classes)]
    if many_classes():
        parts += [f"**Memory pressure.** {PRESSURE_MEANING}", pressure_markdown(root)]
    parts += [f"**Retrieval.** {RETRIEVAL_MEANING}; ± 95% confidence interval.", retrieval_markdown(root),
              "**The project's targets** (flmn_core/results/targets.py): \"36.12 ≥ 36\" where reached, \"31.90 < 33\" "
              "where not; a retrieval cell without a goal is reported only.",
              targets_markdown(root), checkpoint_legend(root, link_cards=True, folder=f"../{zoo.FOLDER}")]
    return "\n\n".join(parts)


# ---- figures and README -------------------------------------------------------------------------------

def figures(root=None):
    """Our counterparts of the paper's Figures 3-5, from the training logs:
    per-instance training accuracy against episodes for Experiment I and II, and the training loss."""
    return {
        "figure3-accuracy-exp1": result_figures.training_curves_figure(load_logs(root, "I"), (1, 2, 3, 10),
                                                            title="Training accuracy by instance, Experiment I"),
        "figure4-accuracy-exp2": result_figures.training_curves_figure(load_logs(root, "II"), (1, 2, 3, 10),
                                                            title="Training accuracy by instance, Experiment II"),
        "figure5-loss": result_figures.loss_curves_figure(load_logs(root), title="Loss, all runs"),
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


def rewrite_section(readme, section):
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


# ---- command line -------------------------------------------------------------------------------------

def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="flmn report", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--checkpoint-dir", default=None, help="checkpoint folder (default: zoo's, checkpoints/)")
    parser.add_argument("--out-md", default=None, help="write the Markdown tables to this file")
    parser.add_argument("--readme", default=None, help=f"rewrite the tables in short between {README_START} and "
                                                       f"{README_END} of this file (README.md)")
    parser.add_argument("--results", default=None, help=f"rewrite the full tables between {README_START} and "
                                                        f"{README_END} of this file (docs/results.md)")
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
        if args.results:
            rewrite_section(args.results, section)
        if args.readme:
            rewrite_section(args.readme, summary_markdown(root))
        if args.figures:
            for path in write_figures(args.figures, root, args.plotlyjs):
                print(f"wrote {path}", file=sys.stderr)
    except ReportError as error:
        sys.exit(f"error: {error}")
    if not (args.out_md or args.readme or args.results):
        print(section)
    return section

