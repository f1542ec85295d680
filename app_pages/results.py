"""Results: the shipped checkpoints' per-instance accuracy beside the papers' tables, and the training
curves. Every number comes from the files in checkpoints/ (flmn_core.training.evaluate's results, the training
logs) or from flmn_core.results.paper, through flmn_core.results.report: none is typed into this page."""

import streamlit as st

from flmn_core.model import zoo
from flmn_core.plotting import colour_by_model
from flmn_core.results import figures as result_figures
from flmn_core.results import paper, report

# Each figure: (data set, title, the experiments of our checkpoints it shows, the published rows beside them).
# Omniglot is split by experiment, as the FLMN paper's Table 1 is; Santoro et al.'s rows (their MANN and
# their human players) belong to neither experiment and are drawn in both.
FIGURES = tuple(
    ("omniglot", f"Omniglot, held-out characters, Experiment {e}", (e,),
     tuple(r for r in paper.TABLE1 if r.experiment == e) + (paper.SANTORO, paper.HUMAN))
    for e in ("I", "II")) + (
    ("mnist", "zero-shot miniMNIST", ("I", "II"), paper.TABLE2),
    ("mnist-normalised", "zero-shot miniMNIST, digits normalised", ("I", "II"), paper.TABLE2),
)


def results_by_checkpoint(dataset, experiments=("I", "II")):
    """{name: evaluate's result} of the shipped checkpoints of these experiments evaluated on dataset, and
    [error message]."""
    results, errors = {}, []
    for shipped in zoo.CHECKPOINTS:
        if shipped.experiment not in experiments:
            continue
        try:
            result = report.load_result(shipped.name, dataset)
        except report.ReportError as error:
            errors.append(str(error))
            continue
        if result is not None:
            results[shipped.name] = result
    return results, errors


def accuracy_figure(dataset, title, experiments, published):
    """Our checkpoints (lines with 95% CIs) and the published rows (points at the instances they report)
    on one per-instance plot, or None when none of our checkpoints has a result."""
    results, errors = results_by_checkpoint(dataset, experiments)
    for message in errors:
        st.error(message)
    if not results:
        return None
    series = {name: {"accuracy": r["accuracy"], "ci95": r["ci95"]} for name, r in results.items()}
    series |= {f"{row.model}{f', Exp. {row.experiment}' if row.experiment else ''} ({row.source})": row.series()
               for row in published}
    return colour_by_model(result_figures.instance_accuracy_figure(series, title=f"Accuracy by instance: {title}"))


def accuracy_figures_ui(dataset):
    """The per-instance plots of one data set, one per experiment where the table splits them."""
    for key, (figure_dataset, title, experiments, published) in enumerate(FIGURES):
        if figure_dataset != dataset:
            continue
        figure = accuracy_figure(dataset, title, experiments, published)
        if figure is not None:
            st.plotly_chart(figure, key=f"results-accuracy-{key}")


st.title("Results")
st.markdown("Per-instance accuracy: of all the steps showing a class for the k-th time in an episode, the "
            "fraction classified right (5 classes × 10 samples). The 1st instance can only be guessed; "
            "the 2nd is one-shot recognition.")

evaluated = any(results_by_checkpoint(d)[0] for d in zoo.DATASETS)
if not evaluated:
    st.info(f"No evaluation results in {zoo.checkpoint_dir() / 'results'} yet, so our rows read \"not evaluated\". "
            "Produce them with `flmn evaluate --checkpoint checkpoints/<name>.pt` "
            "(see README).")

st.caption("In the plots, lines are our checkpoints (10,000 episodes, 95% intervals); hollow diamonds are "
           "published numbers, drawn only at the instances the papers report.")

st.header("Table 1: Omniglot")
st.markdown(report.table1_markdown())
accuracy_figures_ui("omniglot")

st.header("Table 2: zero-shot miniMNIST")
st.markdown(report.table2_markdown())
accuracy_figures_ui("mnist")
st.markdown(f"**{report.DATASET_TITLES['mnist-normalised']}.** MNIST's digits are larger and drawn with a "
            "thicker pen than Omniglot's characters; brought to Omniglot's size and pen, as every drawing on the "
            "Teach page is, they are recognised better:")
st.markdown(report.accuracy_markdown("mnist-normalised"))
accuracy_figures_ui("mnist-normalised")

st.header("Does the read find the class?")
st.markdown("From the 2nd instance of a class on, an earlier drawing of it is in memory. How often the "
            "feature-memory row a model reads most holds such a drawing, and how much of the read weight "
            "lands on those rows (MANN: its one memory). Chance is about 1 in 5.")
st.markdown(report.retrieval_markdown())

st.header("Targets")
st.markdown(report.targets_markdown())

st.header("Training curves")
try:
    has_logs = bool(report.load_logs())
    curves = report.figures() if has_logs else {}
except report.ReportError as error:
    has_logs, curves = False, {}
    st.error(str(error))
if not has_logs:
    st.info(f"No training logs in {zoo.checkpoint_dir() / 'logs'} yet; they appear here once the training runs "
            "have written them.")
for name, figure in curves.items():
    if figure.data:  # an experiment without logs has nothing to draw
        st.plotly_chart(colour_by_model(figure), key=f"results-{name}")

st.header("The checkpoints")
st.markdown(report.checkpoint_legend())
