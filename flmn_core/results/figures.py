"""Figures of results: per-instance accuracy by model, training curves from run logs (README, model cards, the
Results page)."""

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from flmn_core.plotting import MARGIN, as_array, series_colours


def instance_accuracy_figure(series, title="Accuracy by instance"):
    """Per-instance accuracy, one series per model, with 95% error bars where given.

    series: {name: {"accuracy": [I] fractions, optional "ci95": [I] half-widths (fractions), optional
    "instances": [I] instance numbers (default 1..I), optional "published": True}}; e.g. evaluate's
    result JSON or paper.Published.series(). Drawn in percent. A measured series is a line through every
    instance; a published one is points only, at the instances its source reports: a line would invent
    the values between them (the papers give the 1st-5th and 10th, or fewer).
    """
    fig = go.Figure()
    for colour, (name, spec) in zip(series_colours(), series.items()):
        accuracy = as_array(spec["accuracy"])
        instances = list(spec.get("instances") or range(1, len(accuracy) + 1))
        if len(instances) != len(accuracy):
            raise ValueError(f"{name}: {len(accuracy)} accuracies for {len(instances)} instances")
        error = None
        if spec.get("ci95") is not None:
            error = dict(type="data", array=100 * as_array(spec["ci95"]), visible=True, thickness=1.2)
        if spec.get("published"):
            style = dict(mode="markers", marker=dict(color=colour, symbol="diamond-open", size=10, line=dict(width=2)))
        else:
            style = dict(mode="lines+markers", line=dict(color=colour))
        fig.add_trace(go.Scatter(x=instances, y=100 * accuracy, error_y=error, name=name, **style,
                                 hovertemplate=f"{name}, instance %{{x}}: %{{y:.1f}}%<extra></extra>"))
    fig.update_layout(title=dict(text=title, font_size=14), xaxis=dict(title_text="instance", dtick=1),
                      yaxis=dict(title_text="accuracy (%)", range=[0, 100]), height=380, margin=MARGIN)
    return fig


def _records(log, kind):
    """The records of one kind ("train" or "validation") of a training log, in episode order."""
    return sorted((r for r in log if r.get("kind") == kind), key=lambda r: r["episode"])


def training_curves_figure(logs, instances=(1, 2, 10), kind="train", title=None):
    """Per-instance accuracy against training episodes, one panel per instance, one line per run.

    logs: {name: records of flmn_core.training.train's log.jsonl}; kind: "train" (running accuracy of the
    training batches) or "validation".
    """
    if not instances or min(instances) < 1:
        raise ValueError(f"instances must be numbers from 1, got {instances!r}")
    fig = make_subplots(rows=1, cols=len(instances), shared_yaxes=True, horizontal_spacing=0.03,
                        subplot_titles=[f"instance {k}" for k in instances])
    for colour, (name, log) in zip(series_colours(), logs.items()):
        records = _records(log, kind)
        episodes = [r["episode"] for r in records]
        for column, k in enumerate(instances, start=1):
            accuracy = [100 * r["accuracy"][k - 1] if len(r["accuracy"]) >= k else math.nan for r in records]
            fig.add_trace(go.Scatter(x=episodes, y=accuracy, mode="lines", name=name, legendgroup=name,
                                     showlegend=column == 1, line=dict(color=colour),
                                     hovertemplate=f"{name}, episode %{{x}}: %{{y:.1f}}%<extra></extra>"),
                          row=1, col=column)
    _note_if_empty(fig, logs)
    fig.update_yaxes(range=[0, 100], row=1, col=1, title_text=f"{kind} accuracy (%)")
    fig.update_xaxes(title_text="episodes", matches="x")
    fig.update_layout(title=dict(text=title or f"Per-instance {kind} accuracy", font_size=14), height=380,
                      margin=MARGIN)
    return fig


def loss_curves_figure(logs, title="Loss"):
    """Cross-entropy against training episodes: training (solid) and validation (dotted) for each run.
    logs: {name: records of flmn_core.training.train's log.jsonl}."""
    fig = go.Figure()
    for colour, (name, log) in zip(series_colours(), logs.items()):
        for kind, dash in (("train", "solid"), ("validation", "dot")):
            records = _records(log, kind)
            if records:
                fig.add_trace(go.Scatter(x=[r["episode"] for r in records], y=[r["loss"] for r in records],
                                         mode="lines", name=f"{name} ({kind})", line=dict(color=colour, dash=dash),
                                         hovertemplate=f"{name}, episode %{{x}}: %{{y:.3f}}<extra></extra>"))
    _note_if_empty(fig, logs)
    fig.update_layout(title=dict(text=title, font_size=14), xaxis_title_text="episodes",
                      yaxis_title_text="cross-entropy per step", height=380, margin=MARGIN)
    return fig


def _note_if_empty(fig, logs):
    """Say so on the figure when there is no log to draw, rather than show empty axes."""
    if not any(logs.values()):
        fig.add_annotation(text="no training logs yet", xref="paper", yref="paper", x=0.5, y=0.5,
                           showarrow=False, font=dict(size=16, color="#888888"))
