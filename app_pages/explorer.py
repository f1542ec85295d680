"""Episode explorer: one episode replayed step by step, FLMN and MANN side by side at the same step.

The episode is sampled as in evaluation from characters generated on the spot (the default: no data, no
internet), Omniglot's test characters or miniMNIST, or it is this session's (drawn on the Teach page or
loaded from a file). At each step: the input, the label fed with it, each model's prediction, its
addressing weights and its memories. Below, the label-shuffle replay: the same drawings with the labels
permuted, to see whether the models bind labels in memory or remember characters.

The view lives in the URL (`/explorer?source=glyphs&seed=3&samples=10&labels=5&step=12&show=Read,Memories`,
with the checkpoints: app_shared.links): a reload comes back to it and a link reproduces it. Playing advances
one step per tick of a fragment, from a step kept in the session (never from the slider, whose value in the
browser may lag behind under load), and every tick checks the Play switch first.
"""

import streamlit as st

from app_shared import frame, links, memory, sources
from app_shared.links import link_int
from app_shared.markup import label_md, plain
from app_shared.sources import GLYPH_DRAWINGS, GLYPHS, MAX_SEED, SOURCES
from flmn_core.interactive import figures
from flmn_core.interactive.episode import MAX_STEPS, EpisodeError, episode_from_pool
from flmn_core.interactive.shuffle import derangement, label_shuffle_replay
from flmn_core.results import markdown

SESSION = "session"
SOURCE_LABELS = {SESSION: "This session's episode", **SOURCES}
PLAYING = "explorer_playing"  # the key of the Play switch: whether the explorer is playing
PLAY_SECONDS = 1.0  # one step per second while playing (slower when a step takes longer to draw)
PREVIEW_SIDE = 120  # px: the 20 x 20 input, each pixel a sharp 6 x 6 block
EXPLORER_VIEWS = ("Read", "Memories")  # of memory.VIEWS: what the panels show until the person chooses


# ----------------------------------------------------------------------------------------------------
# The view and its link


def first_view(params, session_has_episode):
    """The view a visit starts from, read from the link's query parameters: source, seed, drawings per
    class (samples), labels (the classes of a sampled episode), step (1-based), shuffle (the label-shuffle
    seed), show (the memory views). Without a source: this session's episode when it has one, else
    generated characters, which work offline."""
    source = params.get("source")
    if source not in SOURCE_LABELS:
        source = SESSION if session_has_episode else GLYPHS
    most = max(frame.MIN_CLASSES, frame.most_classes())
    return {"source": source, "seed": link_int(params, "seed", 0, MAX_SEED, 0),
            "samples": link_int(params, "samples", 1, GLYPH_DRAWINGS, GLYPH_DRAWINGS),
            "labels": link_int(params, "labels", frame.MIN_CLASSES, most, min(frame.DEFAULT_CLASSES, most)),
            "step": link_int(params, "step", 1, MAX_STEPS, 1), "shuffle": link_int(params, "shuffle", 0, MAX_SEED, 0),
            "show": link_views(params)}


def link_views(params):
    """The memory views a link shows: its `show`, names of memory.VIEWS separated by commas (others are
    left out; empty: none) -> tuple in VIEWS order; EXPLORER_VIEWS when the link has no `show`."""
    return memory.in_view_order(params["show"].split(",")) if "show" in params else EXPLORER_VIEWS


def view_address_ui(view):
    """Put the view in the address: what a reload or a copied link needs to show the same episode and step."""
    if view["source"] == SESSION:
        link = {"source": SESSION, "step": view["step"], links.TOKEN: links.episode_token()}
    else:
        link = {key: view[key] for key in ("source", "seed", "samples", "labels", "step")}
    links.address_ui(link | {"shuffle": view["shuffle"], "show": ",".join(view["show"])})


def restore_widget(key, value):
    """Give a widget its value from the view when it has none yet (first visit, or back from another
    page, where Streamlit dropped the widget's state)."""
    if key not in st.session_state:
        st.session_state[key] = value


def go_to(step):
    """Show this step (from a callback, or before the step slider exists in the run)."""
    st.session_state["explorer_view"]["step"] = step
    new_slider()


def new_slider():
    """Draw the step slider as a new widget, starting at the view's step. A widget's value set from the
    server does not always reach a browser that drew the widget before (after playing it came back at 1
    while the page showed the step reached); a new widget starts at the value it is given."""
    st.session_state["explorer_slider_round"] = st.session_state.get("explorer_slider_round", 0) + 1


def slider_key():
    """The widget key of the step slider now: explorer_step-<round>."""
    return f"explorer_step-{st.session_state.get('explorer_slider_round', 0)}"


def step_by(delta, steps):
    """Move from the step shown by delta steps, within 1..steps (a callback of the one-step buttons)."""
    go_to(min(max(st.session_state["explorer_view"]["step"] + delta, 1), steps))


def from_the_start():
    """Another episode: its first step, not playing."""
    go_to(1)
    st.session_state[PLAYING] = False


def new_episode():
    st.session_state["explorer_seed"] = min(st.session_state.get("explorer_seed", 0) + 1, MAX_SEED)
    from_the_start()


def session_episode_ui():
    """This session's episode, or None after saying why there is none."""
    episode = frame.session_episode()
    if not len(episode):
        st.info("This session's episode is empty: draw and label a few characters on the Teach page, load an "
                "episode file in the sidebar, or pick another source.")
        return None
    links.stash(episode)
    return episode


# ----------------------------------------------------------------------------------------------------
# Sampled episodes


def sampled_episode_ui(source, view):
    """Sampling options and the sampled episode (kept in the session until they change), or None."""
    left, labels, middle, right = st.columns([3, 2, 1, 1])
    most = max(frame.MIN_CLASSES, frame.most_classes())
    view["labels"] = min(view["labels"], most)  # checkpoints of fewer labels than a link's were chosen
    restore_widget("explorer_samples", view["samples"])
    restore_widget("explorer_seed", view["seed"])
    st.session_state["explorer_labels"] = min(st.session_state.get("explorer_labels", view["labels"]), most)
    view["labels"] = classes = labels.number_input(
        "Labels (classes)", frame.MIN_CLASSES, most, key="explorer_labels",
        help=f"Characters in the episode, each with its label: 2 to {most}, the most the checkpoints chosen "
             "tell apart.")
    view["samples"] = left.slider("Drawings per class", 1, GLYPH_DRAWINGS, key="explorer_samples",
                                  help=f"{classes} classes, each shown this many times: "
                                       f"the episode has {classes} × this steps.")
    view["seed"] = middle.number_input("Seed", 0, MAX_SEED, key="explorer_seed",
                                       help="The same seed gives the same episode, here and in a link.")
    right.button("New episode", on_click=new_episode, icon=":material/casino:", key="explorer_new")
    pool = sources.pool_ui(source, view["seed"])
    if pool is None:
        return None
    key = (source, view["samples"], view["seed"], classes)
    built = st.session_state.get("explorer_episode")
    if built is None or built[0] != key:
        try:
            episode = episode_from_pool(pool, classes, view["samples"], view["seed"])
        except EpisodeError as error:
            st.error(plain(f"{error}."))
            return None
        if built is not None:  # another episode than the one shown: from its start (a link keeps its step)
            view["step"] = 1
            new_slider()
            st.session_state[PLAYING] = False
        built = (key, episode)
        st.session_state["explorer_episode"] = built
    return built[1]


def choose_source_ui(view):
    """The source radio -> the chosen source. A session episode that changed since the explorer last saw
    it (a file loaded, steps taught) is shown at once: that is what the person wants to look at."""
    episode = frame.session_episode()
    signature = (id(episode), len(episode))
    if st.session_state.get("explorer_episode_seen") not in (None, signature) and len(episode):
        view["source"], view["step"] = SESSION, 1
        st.session_state["explorer_source"] = SESSION
        new_slider()
    st.session_state["explorer_episode_seen"] = signature
    restore_widget("explorer_source", view["source"])
    view["source"] = st.radio("Episode", list(SOURCE_LABELS), format_func=SOURCE_LABELS.get, horizontal=True,
                              key="explorer_source", on_change=from_the_start,
                              help="Generated characters need no data. This session's episode is the one drawn "
                                   "on the Teach page, or loaded from a file in the sidebar.")
    return view["source"]


# ----------------------------------------------------------------------------------------------------
# One step


def playing_changed(steps):
    """The Play switch moved. On: play from the next step (from the first after the last), so the first step
    shows at once. Off: the slider comes back at the step reached. The switch's value is state, not an event
    as a button's click is: a change that Streamlit hands to a tick's run and again to the full run after
    it, or late, cannot undo a later one (a replayed Play click used to restart playing after Pause)."""
    view = st.session_state["explorer_view"]
    if st.session_state[PLAYING]:
        view["step"] = 1 if view["step"] >= steps else view["step"] + 1
    else:
        go_to(view["step"])


def step_header_ui(episode, t):
    """The input of step t and the labels around it."""
    image, label = episode.images[t], episode.labels[t]
    fed = ("nothing yet (the first step)" if t == 0
           else f"**{label_md(episode, episode.labels[t - 1])}**, the label of step {t}")
    instance = int(episode.instances()[t])
    left, right = st.columns([1, 4])
    left.html(frame.pixels_html(image, PREVIEW_SIDE, f"x{t + 1}: the input of step {t + 1}"))
    right.markdown(f"**Step {t + 1} of {len(episode)}**  \n"
                   f"Label fed with this input (y of the previous step): {fed}  \n"
                   f"True label of this input: **{label_md(episode, label)}**, shown for the "
                   f"{markdown.ordinal(instance)} time "
                   f"({'a guess is all a model can do' if instance == 1 else 'its label was given before'})")
    predictions = []
    for name, run in episode.runs.items():
        guess = run[t].predicted
        mark = "✓" if guess == label else "✗"
        predictions.append(f"**{name}** predicts **{label_md(episode, guess)}** "
                           f"({100 * float(run[t].probabilities.max()):.0f}%) {mark}")
    right.markdown("  \n".join(predictions))


def step_chooser_ui(view, steps, playing):
    """While playing, where the play has got to; paused, a slider and one-step buttons. -> step index t."""
    if playing:
        st.progress(view["step"] / steps, text=f"Playing: step {view['step']} of {steps}")
        st.session_state["explorer_slider_shown"] = False
        return view["step"] - 1
    if steps == 1:  # a slider needs two values
        return 0
    if not st.session_state.get("explorer_slider_shown"):
        new_slider()  # it comes back after playing
    st.session_state["explorer_slider_shown"] = True
    back, slider, forward = st.columns([1, 14, 1], vertical_alignment="bottom")
    back.button("", icon=":material/chevron_left:", key="explorer_back", on_click=step_by, args=(-1, steps),
                help="One step back")
    forward.button("", icon=":material/chevron_right:", key="explorer_forward", on_click=step_by, args=(1, steps),
                   help="One step on")
    view["step"] = slider.slider("Step", 1, steps, value=view["step"], key=slider_key())
    return view["step"] - 1


def step_view_ui(episode, models, view):
    """The Play switch and everything drawn for the current step. The step view is a fragment: moving the
    slider reruns only it, and while playing it reruns itself every PLAY_SECONDS, one step per run."""
    T = len(episode)
    view["step"] = min(max(view["step"], 1), T)
    playing = st.session_state.get(PLAYING, False)
    # Outside the fragment: starting or stopping the timer needs a full run (run_every is set there).
    st.toggle("Play", key=PLAYING, on_change=playing_changed, args=(T,), help="One step a second, by itself")
    st.session_state["explorer_full_run"] = True  # the call below is part of a full run, not a tick

    @st.fragment(run_every=PLAY_SECONDS if playing else None)
    def view_step():
        # A run of this fragment alone is a tick of the timer (or a click inside it); only a tick while
        # playing moves on, one step from the session's count, so late or stale ticks cannot skip or rewind.
        ticked = not st.session_state.pop("explorer_full_run", False)
        if st.session_state.get(PLAYING, False) != playing:
            # The switch moved in a run of this fragment alone (Streamlit can hand a widget change to a
            # tick's run): redraw the page, to start or stop the timer.
            st.rerun()
        if ticked and playing:
            view["step"] = min(view["step"] + 1, T)
            if view["step"] == T:  # the end: stop the timer and turn the switch off
                st.session_state[PLAYING] = False
                go_to(T)
                st.rerun()
        t = step_chooser_ui(view, T, playing)
        step_header_ui(episode, t)
        figure = figures.probabilities_figure({n: r[t].probabilities for n, r in episode.runs.items()},
                                              episode.label_texts())
        figure.update_layout(height=240)
        st.plotly_chart(figure, key="explorer-probabilities", config={"displayModeBar": False})
        st.html(frame.strip_html(episode, max(0, t - 11), min(T, t + 12), highlight=t))
        parts = memory.views_ui("explorer-views", view["show"])
        view["show"] = memory.in_view_order(st.session_state["explorer-views"])
        view_address_ui(view)
        memory.memory_panels_ui(episode, models, t, "explorer", parts, side_by_side=True)

    view_step()


# ----------------------------------------------------------------------------------------------------
# Label-shuffle replay


def shuffle_again():
    st.session_state["explorer_view"]["shuffle"] = (st.session_state["explorer_view"]["shuffle"] + 1) % (MAX_SEED + 1)


def shuffle_replays(episode, models, seed):
    """Each model's label-shuffle replay of this episode -> (permutation, {name: ShuffleReplay}); kept in
    the session for the same episode, models and seed (reruns of the page never recompute it)."""
    key = (id(episode), len(episode), tuple((name, id(model)) for name, model in models.items()), seed)
    cached = st.session_state.get("explorer_shuffle")
    if cached is None or cached[0] != key:
        permutation = derangement(episode.classes, seed)
        replays = {name: label_shuffle_replay(model, episode.images, episode.labels, permutation)
                   for name, model in models.items()}
        cached = (key, (permutation, replays))
        st.session_state["explorer_shuffle"] = cached
    return cached[1]


def shuffle_table_md(replays, instances):
    """Each model's per-instance accuracy on the original episode and on its label-shuffled replay, side by
    side, as a Markdown table (instances 1..instances)."""
    rows = []
    for name, replay in replays.items():
        for which, (correct, total) in zip(("original", "permuted"), replay.instance_accuracy(instances)):
            cells = [f"{c}/{n}" if n else "–" for c, n in zip(correct, total)]
            later_c, later_n = sum(correct[1:]), sum(total[1:])
            later = f"{100 * later_c / later_n:.0f}%" if later_n else "–"
            agreement = f"{100 * replay.agreement():.0f}% of steps" if which == "permuted" and later_n else ""
            rows.append([name, which, *cells, later, agreement])
    return markdown.table(["model", "labels", *(markdown.ordinal(k) for k in range(1, instances + 1)), "2nd on",
                           "same prediction, permuted"], rows)


def shuffle_ui(episode, models, view):
    """The label-shuffle replay of this episode: the permutation, and both models' accuracy side by side."""
    st.subheader("Label-shuffle replay")
    st.markdown("The same drawings in the same order, with every label changed for another throughout the "
                "episode. A model that binds each label to its drawings in memory does as well, predicting the "
                "permuted labels; one that had learned the characters themselves would fail from the 2nd "
                "instance on.")
    permutation, replays = shuffle_replays(episode, models, view["shuffle"])
    left, right = st.columns([4, 1], vertical_alignment="center")
    left.markdown("Permutation: " + " · ".join(f"{label_md(episode, c)} → {label_md(episode, permutation[c])}"
                                                 for c in range(episode.classes)))
    right.button("Shuffle again", on_click=shuffle_again, icon=":material/shuffle:", key="explorer_shuffle_again")
    instances = max(1, int(episode.instances().max()))
    st.markdown(shuffle_table_md(replays, instances))
    st.caption("\"Same prediction, permuted\": of the steps from the 2nd instance on, how many the replay predicts "
               "as the permuted prediction of the original. The 1st instance is a guess either way.")


# ----------------------------------------------------------------------------------------------------
# The page


st.title("Episode explorer")
st.markdown("Replay an episode one step at a time and watch what each model reads and writes. "
            "Green marks the rows just read, orange the rows just written. The address of this page "
            "reproduces what it shows: copy it to share the episode and step.")

if "explorer_view" not in st.session_state:  # a new session: a first visit, a reload or a shared link
    st.session_state["explorer_view"] = first_view(links.first_params(), bool(len(frame.session_episode())))
view = st.session_state["explorer_view"]

models = frame.current_models()
source = choose_source_ui(view)
episode = None
if not models:
    st.warning("No model is loaded: choose a checkpoint in the sidebar.")
else:
    episode = session_episode_ui() if source == SESSION else sampled_episode_ui(source, view)
    models = frame.sync_episode(episode, models) if episode is not None else {}
if episode is None or not models:
    view_address_ui(view)  # otherwise the step view writes it, at every step
    st.stop()
step_view_ui(episode, models, view)
with st.expander("Accuracy by instance in this episode"):
    st.markdown(frame.accuracy_table_md(episode))
shuffle_ui(episode, models, view)
