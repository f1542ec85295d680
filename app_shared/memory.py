"""The memory view of one model at one step, with memory surgery: a panel the Teach and Episode explorer
pages share.

    memory_panel_ui(episode, "flmn-exp1", model, t, key="teach-flmn-exp1")
    memory_panels_ui(episode, models, t, "teach", parts)   # every model: reads side by side, figures after

draws, for one model at step t of an episode (t = len(episode): the drawing predicted and not labelled
yet), where its read went and how focused it is, its addressing weights and memories with every row
named by the drawing it holds, the controller's key, add and read vectors and logits, and the surgery
controls: wipe or freeze rows (or the rows of one label) as step t begins, or change the usage decay
gamma, and see the prediction change.

Surgery is this session's what-if: it replays the steps on the side (flmn_core.interactive.surgery), so neither the
episode nor the shared model ever changes; the page's own predictions stay the model's. Its settings
live in st.session_state under the panel's key.
"""

import streamlit as st

from app_shared.markup import plain
from flmn_core.interactive import figures, memory_rows, read_view, surgery
from flmn_core.interactive.episode import model_labels

WIPE, FREEZE = "Wipe", "Freeze"
CHART_CONFIG = {"displayModeBar": False}
# What a page can show of each model's memory: the read (HTML, flmn_core.interactive.read_view) and groups of
# figures.memory_view's figures. Each Plotly chart costs the browser about 0.1 s to draw at every update, so a
# page shows the groups a person chooses.
VIEWS = {"Read": ("read",), "Memories": ("feature_memory", "label_memory", "memory"), "Addressing": ("addressing",),
         "Controller": ("controller",)}


def step_inputs(episode, name, t):
    """The images [20, 20] and the model's interactive.Steps of steps 0..t of the episode; step
    t = len(episode) is the pending one (predicted, not labelled yet) -> (images, steps)."""
    if t == len(episode):
        if episode.pending is None or name not in episode.pending[1]:
            raise ValueError(f"step {t + 1} has not been predicted by {name}")
        image, pending = episode.pending
        return episode.images + [image], episode.runs[name] + [pending[name]]
    if not 0 <= t < len(episode):
        raise ValueError(f"the episode has no step {t + 1}")
    return episode.images[: t + 1], episode.runs[name][: t + 1]


def rows_of_labels(rows, classes):
    """{label: the rows holding a drawing of it} -> dict of tuples (for the 'rows of a label' shortcut)."""
    return {c: tuple(int(r) for r in (rows.label == c).nonzero().flatten()) for c in range(classes)}


def row_choice_text(rows, label_text):
    """A function row -> "row 12 · x3, label 2" for the row picker."""
    def text(row):
        writer, label = int(rows.writer[row]), int(rows.label[row])
        if writer < 0:
            return f"row {row} · no drawing"
        return f"row {row} · x{writer + 1}, " + (f"label {label_text(label)}" if label >= 0 else "no label yet")
    return text


def surgery_ui(key, model, t, rows, label_text, classes):
    """The surgery controls -> the Edit they describe (rows wiped or frozen as the step where they were
    chosen began, and a usage decay gamma), or None when nothing is changed."""
    rows_key, step_key, gamma_key = f"{key}-rows", f"{key}-step", f"{key}-gamma"
    by_label = rows_of_labels(rows, classes)
    left, right = st.columns([3, 2])
    chosen = left.multiselect("Rows", list(range(len(rows.writer))), key=rows_key,
                              format_func=row_choice_text(rows, label_text), on_change=remember_step,
                              args=(step_key, t), placeholder="Choose rows (their drawings are listed)")
    right.selectbox("Rows of label", [None, *range(classes)], key=f"{key}-label",
                    format_func=lambda c: "—" if c is None else label_text(c), on_change=add_label_rows,
                    args=(key, by_label, t), help="Adds every row whose drawing has this label, as this step shows them.")
    action = left.radio("What to do with them", [WIPE, FREEZE], horizontal=True, key=f"{key}-action",
                        on_change=remember_step, args=(step_key, t),
                        help="Wipe: the rows are emptied as the step begins (zero memory, zero usage). Freeze: "
                             "after every step from then on, the rows get back the content they had.")
    gamma = right.slider("Usage decay γ (Eq. 4)", 0.0, 1.0, float(model.config.gamma), 0.01, key=gamma_key,
                         help=f"{model.config.gamma:g} in training. Changes every step of the episode: smaller "
                              "forgets usage faster, so rows are reused sooner.")
    st.button("Undo the surgery", key=f"{key}-undo", on_click=undo_surgery, args=(key,),
              icon=":material/healing:")
    chosen = tuple(sorted(int(r) for r in chosen))
    gamma = None if gamma == model.config.gamma else float(gamma)
    if not chosen and gamma is None:
        return None
    step = st.session_state.get(step_key, t) if chosen else 0
    return surgery.Edit(step=step, wipe=chosen if action == WIPE else (), freeze=chosen if action == FREEZE else (),
                        gamma=gamma)


def remember_step(step_key, t):
    """Callback: rows chosen (or their action changed) at step t are wiped or frozen as step t begins."""
    st.session_state[step_key] = t


def add_label_rows(key, by_label, t):
    """Callback of the 'Rows of label' box: add that label's rows to the chosen rows."""
    label = st.session_state[f"{key}-label"]
    if label is not None:
        chosen = set(st.session_state.get(f"{key}-rows", ())) | set(by_label[label])
        st.session_state[f"{key}-rows"] = sorted(chosen)
        st.session_state[f"{key}-step"] = t
    st.session_state[f"{key}-label"] = None


def undo_surgery(key):
    """Callback: back to the model as it is: the widgets return to their defaults (no rows, its own gamma)."""
    for name in ("rows", "gamma", "step"):
        st.session_state.pop(f"{key}-{name}", None)


def describe_edit(edit):
    """An edit in words, e.g. "rows 12, 17 wiped as step 5 began; γ 0.50 for the whole episode"."""
    parts = []
    for rows, verb in ((edit.wipe, "wiped as step {} began"), (edit.freeze, "frozen from step {} on")):
        if rows:
            parts.append(f"row{'s' * (len(rows) > 1)} {', '.join(map(str, rows))} {verb.format(edit.step + 1)}")
    if edit.gamma is not None:
        parts.append(f"γ {edit.gamma:.2f} for the whole episode")
    return "; ".join(parts)


def prediction_change_md(name, original, edited, label_text):
    """What the surgery did to the prediction, in Markdown."""
    before = f"**{plain(label_text(original.predicted))}** ({100 * float(original.probabilities.max()):.0f}%)"
    after = (f"**{plain(label_text(edited.predicted))}** "
             f"({100 * float(edited.probabilities[edited.predicted]):.0f}%)")
    if edited.predicted == original.predicted:
        change = float((edited.probabilities - original.probabilities).abs().max())
        return (f"With the surgery, {name} still predicts {after}; without it {before}. "
                f"Largest change of a probability: {change:.2f}.")
    return f"With the surgery, {name} predicts {after} instead of {before}."


def in_view_order(names):
    """The names of VIEWS among names, in VIEWS' order (others are left out) -> tuple."""
    return tuple(view for view in VIEWS if view in set(names))


def views_ui(key, default):
    """The control choosing what the memory panels show -> the names of the figures chosen (for
    memory_panel_ui's parts). default: the VIEWS shown while the session has no choice of its own (a first
    visit, a link); the choice is st.session_state[key], a list of VIEWS names."""
    st.session_state.setdefault(key, list(default))
    chosen = st.segmented_control(
        "Show", list(VIEWS), selection_mode="multi", key=key,
        help="Read: where each model's read went, on its true 0-1 scale, row by row. Memories: the feature and "
             "label memories (MANN: its memory) as heatmaps. Addressing: read, write, least-used and usage "
             "weights over the rows. Controller: the key, add and read vectors and the logits. Each figure "
             "adds to the time an update takes.")
    if not chosen:
        st.caption("Choose above what to show of the memories.")
    return tuple(part for view in chosen for part in VIEWS[view])


def surgery_section_ui(episode, name, model, t, key, images, steps, rows):
    """The surgery controls in a folded section -> (the steps and rows to show): the model's own, or,
    while a surgery is set, those of the edited replay. The section is built only while it is open (a
    lazy expander): its widgets cost the browser tens of milliseconds at every update, and a closed
    section means the model as it is (its settings are dropped)."""
    section = st.expander("Memory surgery: wipe or freeze rows, change γ", icon=":material/content_cut:",
                          key=f"{key}-surgery", on_change="rerun")
    if not section.open:
        return steps, rows
    with section:
        label_text = episode.label_text
        edit = surgery_ui(key, model, t, rows, label_text, episode.classes)
        if edit is not None and edit.changes_memory and edit.step > t:
            st.caption(f"The rows are wiped or frozen from step {edit.step + 1} on, after this step.")
            edit = surgery.Edit(gamma=edit.gamma) if edit.gamma is not None else None
        if edit is None:
            st.caption("Closing this section drops the surgery.")
            return steps, rows
        inputs = [(images[s], episode.prev_label(s, model_labels(model))) for s in range(t + 1)]
        shown = surgery.edited_run(model, inputs, steps, edit)
        st.markdown(prediction_change_md(name, steps[-1], shown[-1], label_text))
        st.caption(f"Shown below with the surgery: {describe_edit(edit)}. The episode and the model are "
                   "unchanged; closing this section drops the surgery.")
        return shown, memory_rows.describe_steps(shown, episode.labels)


def read_ui(episode, name, model, t, key, parts=None):
    """The first part of the memory view of model `name` at step t (0-based; t = len(episode) is the
    pending step): the surgery section and the read -> what the figures draw: (the steps shown, their
    RowView, the label names)."""
    images, steps = step_inputs(episode, name, t)
    shown, rows = surgery_section_ui(episode, name, model, t, key, images, steps,
                                     memory_rows.describe_steps(steps, episode.labels))
    names = episode.label_texts()
    if parts is None or "read" in parts:
        st.html(read_view.step_html(shown[-1], rows, images, names))
    return shown, rows, names


def figures_ui(model, shown, rows, names, key, parts=None):
    """The rest of a memory view (read_ui's result): the Plotly figures among parts (None: all)."""
    charts = None if parts is None else tuple(part for part in parts if part != "read")
    logits = surgery.logits_of(model, shown[-1].state)[0]
    for figure_key, figure in figures.memory_view(shown[-1], rows, logits, names, charts).items():
        st.plotly_chart(figure, key=f"{key}-{figure_key}", config=CHART_CONFIG)


def memory_panel_ui(episode, name, model, t, key, parts=None):
    """The memory view of model `name` at step t (0-based; t = len(episode) is the pending step) with
    memory surgery. key: a prefix unique on the page for this panel's widgets and charts; parts: the
    names of the figures to draw (views_ui; None: all)."""
    figures_ui(model, *read_ui(episode, name, model, t, key, parts), key, parts)


def memory_panels_ui(episode, models, t, prefix, parts, side_by_side=False):
    """Every model's memory view at step t, each under its name: the reads side by side, then the figures,
    side by side too (a whole page's width), else across the width one model after the other (in a narrow
    column, beside each other, a heatmap's row names leave its plot a sliver). The figures start in a row
    of their own, so that two models' figures start level whatever their reads' notes. Keys:
    prefix-<model name>."""
    shown = {}
    for column, (name, model) in zip(st.columns(len(models), gap="small"), models.items()):
        with column:
            st.markdown(f"**{name}**")
            shown[name] = read_ui(episode, name, model, t, f"{prefix}-{name}", parts)
    places = st.columns(len(models), gap="small") if side_by_side else [st.container() for _ in models]
    for place, (name, model) in zip(places, models.items()):
        with place:
            figures_ui(model, *shown[name], f"{prefix}-{name}", parts)
