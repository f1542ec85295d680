"""What the app's pages share: the checkpoints chosen in the sidebar, the person's episode, the episode
file, and a few small drawing helpers. Streamlit lives here and in app_pages/; the maths stays in flmn_core.

The models are loaded once per process with st.cache_resource and shared by every session, so nothing
here changes them: each session keeps only its own episode (images, labels, the models' steps) in
st.session_state.
"""

import base64
import functools
import gc
import html
import io
from pathlib import Path

import numpy as np
import streamlit as st
import torch
from PIL import Image

from app_shared import links
from app_shared.markup import plain
from flmn_core import CheckpointError, load_model
from flmn_core.interactive.episode import MAX_STEPS, EpisodeError, InteractiveEpisode, label_space
from flmn_core.model import zoo
from flmn_core.model.networks import MODELS
from flmn_core.plotting import model_colour
from flmn_core.results import markdown
from flmn_core.training.metrics import INSTANCES

DEFAULT_CLASSES = 5  # labels a new episode uses, as the papers' episodes (fewer when a model tells fewer apart)
MIN_CLASSES = 2
ASSETS = Path(__file__).resolve().parents[1] / "assets"
STYLESHEET = ASSETS / "style.css"  # the app's CSS (the strip's too)
LOGO = str(ASSETS / "logo.svg")  # a str: st.logo takes an SVG by its file name, not by a Path
STRIP_STEPS = 60  # the Teach page's strip shows the latest steps; the explorer shows any step
ACCURACY_PX = 80  # px of 100% in the running accuracy's chart
MODEL_KINDS = tuple(MODELS)  # the sidebar offers one checkpoint of each kind, compared side by side

# One thread per process: the server may run beside training jobs, and a batch of one step gains
# nothing from more. Done here because this module is imported once per process, not once per rerun.
torch.set_num_threads(1)


@functools.cache
def freeze_long_lived_objects():
    """Once per process, after the first run: move the objects that live as long as the server (modules,
    functions, the models) out of the garbage collector's reach. Streamlit collects all garbage after
    every script run (gc.collect(2)); over the ~200,000 objects of torch, Plotly and Streamlit that took
    100-150 ms on this machine, paid before the next interaction could run and twice on a label click
    (its callback reruns the page's fragments). Garbage made later is still collected as before."""
    gc.collect()
    gc.freeze()


# ----------------------------------------------------------------------------------------------------
# Checkpoints


@st.cache_resource(max_entries=12, show_spinner="Loading the checkpoint…")
def cached_model(path, modified_ns, sha256):
    """The model of a checkpoint file, or why it cannot be loaded -> (model, None) or (None, reason),
    once per (path, modification time, the sha256 its model card states or None) for all sessions: a
    checkpoint replaced on disk is loaded again, and a broken one is not read again on every rerun.
    Shared: callers must never change the model."""
    try:
        return load_model(path, sha256), None
    except CheckpointError as error:
        return None, error.reason


def choose_checkpoints_ui():
    """Sidebar: one shipped checkpoint per model kind -> list of zoo.Shipped (may be empty). A session
    starts with the checkpoints its link names (`flmn=flmn-conv&mann=mann-exp1`), else each kind's first."""
    shipped = zoo.available()
    chosen = []
    for kind in MODEL_KINDS:
        options = [c for c in shipped if c.model == kind]
        if not options:
            st.sidebar.warning(f"No {kind.upper()} checkpoint in {zoo.checkpoint_dir()}.")
            continue
        if f"checkpoint_{kind}" not in st.session_state:
            named = [c for c in options if c.name == links.first_params().get(kind)]
            st.session_state[f"checkpoint_{kind}"] = (named or options)[0]
        choice = st.sidebar.selectbox(f"{kind.upper()} checkpoint", options, key=f"checkpoint_{kind}",
                                      format_func=lambda c: f"{c.name} (Experiment {c.experiment})",
                                      help="  \n".join(f"**{c.name}**: {c.description}" for c in options))
        chosen.append(choice)
    return chosen


def load_models(chosen):
    """Load the chosen checkpoints -> ({name: model}, [error message]). A checkpoint that fails to load
    is left out, with a message naming its file and why (not the server's folder: the page may be seen
    from elsewhere); the others still work."""
    models, errors = {}, []
    for shipped in chosen:
        path = zoo.weights_path(shipped.name)
        try:
            model, reason = cached_model(str(path), path.stat().st_mtime_ns, zoo.card_sha256(shipped.name))
        except OSError as error:  # the file went away or became unreadable since the sidebar listed it
            model, reason = None, error.strerror or "the file cannot be read"
        if model is None:
            errors.append(f"{shipped.name} could not be loaded from {path.name}: {reason}")
        else:
            models[shipped.name] = model
    return models, errors


def current_models():
    """The models the sidebar loaded for this run: {name: model} (possibly empty)."""
    return st.session_state.get("models", {})


# ----------------------------------------------------------------------------------------------------
# The person's episode


def most_classes():
    """The most labels an episode may use with the checkpoints chosen: the fewest any of them tells apart."""
    return label_space(current_models(), DEFAULT_CLASSES)


def session_episode():
    """This session's episode, created on first use: the one its link's token names (a reload), else an
    empty one of the link's `labels` (DEFAULT_CLASSES without), at most most_classes(). An empty episode
    follows a change of checkpoints to fewer labels than it uses."""
    episode = st.session_state.get("episode")
    if episode is None:
        params = links.first_params()
        restored = links.restore(params[links.TOKEN]) if params.get(links.TOKEN) else None
        if restored is not None:
            episode, kept = restored
            st.session_state["teach_kept"] = kept  # the drawing not labelled yet, for the Teach page
        else:
            wanted = links.link_int(params, "labels", MIN_CLASSES, most_classes(), DEFAULT_CLASSES)
            episode = InteractiveEpisode(min(wanted, most_classes()))
        st.session_state["episode"] = episode
    elif not len(episode) and episode.classes > most_classes():
        episode.set_classes(most_classes())
    return episode


def runnable_models(episode):
    """The models chosen, if every one of them can run the episode (tells at least its labels apart), else
    none: sync_episode says why at the top of the page."""
    models = current_models()
    return models if most_classes() >= episode.classes else {}


def sync_episode(episode, models):
    """Bring the episode to the chosen models; show why when it cannot (the episode is kept, for models
    that can run it). -> the models it runs with.

    For an episode loaded from a file, also say which models now predict differently than when it was
    saved (another checkpoint under the same name, e.g. retrained)."""
    try:
        episode.sync(models)
    except EpisodeError as error:
        st.error(plain(f"{error}."))
        return {}
    for name, changed in episode.changed_predictions().items():
        if changed:
            st.info(f"{name} now predicts {changed} of the {len(episode)} steps of this episode differently "
                    "from when it was saved: the checkpoint has changed since.")
    return models


def episode_file_ui():
    """Sidebar: load an episode file (replacing this session's episode) from any page. Saving is the Teach
    page's: its button is redrawn whenever the episode changes, which a sidebar button is not (a label
    click reruns only the Teach page's fragments), so a save there always has the current episode."""
    with st.sidebar.expander("Episode file", expanded=False):
        st.caption("Save this session's episode with *Save episode* on the Teach page.")
        round_ = st.session_state.setdefault("episode_upload_round", 0)
        st.file_uploader("Load an episode", type=["npz"], key=f"episode_upload_{round_}",
                         on_change=load_episode_upload, args=(f"episode_upload_{round_}",),
                         help=f"A file saved by this app, of at most {MAX_STEPS} steps; it replaces the current "
                              "episode.")
        kind, text = st.session_state.get("episode_file_message", (None, None))
        if kind == "error":
            st.error(plain(text))
        elif kind == "success":
            st.success(plain(text))


def load_episode_upload(key):
    """Callback of the episode uploader: replace the session's episode with the file's, or keep the
    episode so far and say why the file was refused."""
    uploaded = st.session_state.get(key)
    if uploaded is not None and load_episode_file(uploaded.getvalue(), uploaded.name):
        st.session_state["episode_upload_round"] += 1  # a fresh uploader, so the file is not loaded again


def load_episode_file(source, name):
    """Replace the session's episode with an episode file's (a path or bytes, named `name` to the person),
    or keep the episode so far; either way the sidebar's episode file box says what happened -> whether
    it loaded. A file of more labels than the checkpoints chosen tell apart is refused here, at the door.
    The models replay the loaded episode on the next run (sync_episode)."""
    try:
        episode = InteractiveEpisode.load(source, labels=most_classes())
    except EpisodeError as error:
        st.session_state["episode_file_message"] = ("error", f"{name}: {error}. The episode so far is kept.")
        return False
    st.session_state["episode"] = episode
    st.session_state.pop("teach_kept", None)
    st.session_state["episode_file_message"] = ("success", f"Loaded {name}: {len(episode)} steps, "
                                                           f"{episode.classes} labels.")
    # A fresh canvas: a drawing on it was predicted from the old episode's memories.
    st.session_state["canvas_round"] = st.session_state.get("canvas_round", 0) + 1
    return True


# ----------------------------------------------------------------------------------------------------
# Drawing helpers


def ink_pixels(image):
    """A [20, 20] ink image (ink 1) -> uint8 array, black ink on white."""
    return (255 * (1 - np.clip(np.asarray(image, dtype=np.float32), 0, 1))).round().astype(np.uint8)


def data_uri(image):
    """A [20, 20] ink image -> a PNG data URI (about 400 bytes), drawn sharp by the browser."""
    buffer = io.BytesIO()
    Image.fromarray(ink_pixels(image)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def pixels_html(image, side, caption="", smooth=False):
    """A [20, 20] ink image as HTML: its PNG inline, drawn side x side px with sharp pixels (smooth: blended,
    as a character to copy), over a caption. Inline, not st.image: a fragment's rerun never frees the files
    st.image stores on the server (only a full run does), so a Teach session that reruns only its
    fragments would hold every preview it drew."""
    text = f'<figcaption>{html.escape(caption)}</figcaption>' if caption else ""
    kind = "flmn-pixels flmn-smooth" if smooth else "flmn-pixels"
    return (f'<figure class="{kind}"><img src="{data_uri(image)}" width="{side}" height="{side}" '
            f'alt="{html.escape(caption or "drawing")}"/>{text}</figure>')


def short_name(name):
    """A checkpoint name for tight places: 'flmn-exp1' -> 'FLMN', 'mann4-santoro' -> 'MANN4'."""
    return name.split("-")[0].upper()


def stylesheet_ui():
    """Load the app's stylesheet (assets/style.css) into the page; it takes no room."""
    st.html(STYLESHEET)


def strip_html(episode, first=0, last=None, highlight=None):
    """The episode as a row of thumbnails: step number, the label given, and each model's prediction
    marked right or wrong. Steps first..last-1; `highlight` frames one step (the explorer's). Styled by the
    flmn-* classes of assets/style.css."""
    last = len(episode) if last is None else last
    names = list(episode.runs)
    cells = []
    for t in range(first, last):
        label = episode.labels[t]
        lines = [f"<b>{t + 1}</b> · label {html.escape(episode.label_text(label))}"]
        for name in names:
            guess = episode.runs[name][t].predicted
            kind, mark = ("flmn-right", "✓") if guess == label else ("flmn-wrong", "✗")
            lines.append(f'<span class="{kind}">{html.escape(short_name(name))} {guess + 1} {mark}</span>')
        current = " flmn-current" if t == highlight else ""
        cells.append(f'<div class="flmn-step{current}"><img src="{data_uri(episode.images[t])}" width="48" height="48" '
                     f'alt="step {t + 1}"/>'
                     f'{"<br>".join(lines)}</div>')
    return f'<div class="flmn-strip">{"".join(cells)}</div>'


def instances_seen(episode, instances=INSTANCES):
    """The instances the episode has reached so far (at least 1, at most `instances`)."""
    return max(1, min(instances, int(episode.instances().max()))) if len(episode) else 1


def accuracy_chart_html(episode, instances=INSTANCES):
    """Running per-instance accuracy of every model as a small bar chart in HTML (styled by the flmn-acc
    classes of assets/style.css): a group of bars per instance seen so far, one per model in its colour,
    each ACCURACY_PX * accuracy high, with the counts in its hover. HTML rather than a Plotly chart: it is
    redrawn at every label click, and a chart costs the browser about 0.1 s each time."""
    seen = instances_seen(episode, instances)
    counts = {name: episode.instance_accuracy(name, seen) for name in episode.runs}
    groups = []
    for k in range(seen):
        bars = []
        for name, (correct, total) in counts.items():
            if total[k]:
                share = correct[k] / total[k]
                hover = f"{name}, {markdown.ordinal(k + 1)} instance: {correct[k]}/{total[k]} ({100 * share:.0f}%)"
                bars.append(f'<i class="flmn-acc-bar" title="{html.escape(hover)}" data-accuracy="{share:.6g}" '
                            f'style="height:{ACCURACY_PX * share:.1f}px;background:{model_colour(name)}"></i>')
        groups.append(f'<div class="flmn-acc-group"><div class="flmn-acc-bars">{"".join(bars)}</div>'
                      f'<span>{markdown.ordinal(k + 1)}</span></div>')
    legend = "".join(f'<span><i style="background:{model_colour(name)}"></i>{html.escape(name)}</span>'
                     for name in counts)
    return (f'<figure class="flmn-acc"><figcaption>Accuracy by instance (0 to 100%)</figcaption>'
            f'<div class="flmn-acc-plot" style="height:{ACCURACY_PX}px">{"".join(groups)}</div>'
            f'<div class="flmn-acc-legend">{legend}</div></figure>')


def accuracy_table_md(episode, instances=INSTANCES):
    """Running per-instance accuracy of every model as a Markdown table (instances seen so far)."""
    if not len(episode) or not episode.runs:
        return ""
    seen = instances_seen(episode, instances)
    rows = []
    for name in episode.runs:
        correct, total = episode.instance_accuracy(name, instances)
        cells = [f"{c}/{n}" if n else "–" for c, n in zip(correct[:seen], total[:seen])]
        later_c, later_n = sum(correct[1:]), sum(total[1:])
        later = f"{later_c}/{later_n} ({100 * later_c / later_n:.0f}%)" if later_n else "–"
        rows.append([name, *cells, later])
    return markdown.table(["model", *(markdown.ordinal(k) for k in range(1, seen + 1)), "all after the 1st"], rows)
