"""Results: the shipped checkpoints' per-instance accuracy beside the papers' tables, and the training
curves. Every number comes from the files in checkpoints/ (flmn_core.evaluate's results, the training
logs) or from flmn_core.paper, through flmn_core.report: none is typed into this page."""

import streamlit as st

from flmn_core import paper, report, viz, zoo

DATASETS = {"omniglot": ("Omniglot, held-out characters", paper.TABLE1 + (paper.SANTORO,)),
            "mnist": ("zero-shot miniMNIST", paper.TABLE2)}


def results_by_checkpoint(dataset):
    """{name: evaluate's result} of the shipped checkpoints evaluated on dataset, and [error message]."""
    results, errors = {}, []
    for shipped in zoo.CHECKPOINTS:
        try:
            result = report.load_result(shipped.name, dataset)
        except report.ReportError as error:
            errors.append(str(error))
            continue
        if result is not None:
            results[shipped.name] = result
    return results, errors


def accuracy_figure(dataset):
    """Our checkpoints (with 95% CIs) and the published rows on one per-instance plot, or None."""
    title, published = DATASETS[dataset]
    results, errors = results_by_checkpoint(dataset)
    for message in errors:
        st.error(message)
    if not results:
        return None
    series = {name: {"accuracy": r["accuracy"], "ci95": r["ci95"]} for name, r in results.items()}
    series |= {f"{row.model} ({row.source})": row.series() for row in published}
    return viz.instance_accuracy_figure(series, title=f"Accuracy by instance: {title}")


st.title("Results")
st.markdown("Per-instance accuracy: of all the steps showing a class for the k-th time in an episode, the "
            "fraction classified right (5 classes × 10 samples). The 1st instance can only be guessed; "
            "the 2nd is one-shot recognition.")

evaluated = any(results_by_checkpoint(d)[0] for d in DATASETS)
if not evaluated:
    st.info(f"No evaluation results in {zoo.checkpoint_dir() / 'results'} yet, so our rows read \"not evaluated\". "
            "Produce them with `python -m flmn_core.evaluate --checkpoint checkpoints/<name>.pt` "
            "(see README).")

st.header("Table 1: Omniglot")
st.markdown(report.table1_markdown())
figure = accuracy_figure("omniglot")
if figure is not None:
    st.plotly_chart(figure, key="results-omniglot")

st.header("Table 2: zero-shot miniMNIST")
st.markdown(report.table2_markdown())
figure = accuracy_figure("mnist")
if figure is not None:
    st.plotly_chart(figure, key="results-mnist")

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
        st.plotly_chart(figure, key=f"results-{name}")

st.header("The checkpoints")
st.markdown(report.checkpoint_legend())
