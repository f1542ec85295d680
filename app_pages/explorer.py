"""Episode explorer: one episode replayed step by step, FLMN and MANN side by side at the same step.

The episode is this session's (drawn on the Teach page or loaded from a file) or a fresh one sampled as
in evaluation from Omniglot's test characters, miniMNIST, or characters generated on the spot (which
needs no data and no internet). At each step: the input, the label fed with it, each model's prediction,
its addressing weights and its memories.
"""

import streamlit as st

import app_common
import app_memory
from flmn_core import DataError, load_mini_mnist, load_omniglot, split_indices, viz
from flmn_core.glyphs import sample_glyph_pool
from flmn_core.interactive import EpisodeError, episode_from_pool

SESSION, GLYPHS, OMNIGLOT, MNIST = ("This session's episode", "Generated characters", "Omniglot test characters",
                                    "miniMNIST digits")
GLYPH_CHARACTERS, GLYPH_DRAWINGS = 40, 10  # the generated pool: 40 new characters drawn 10 times each
PLAY_SECONDS = 1.0  # one step per second while playing
PREVIEW_SCALE = 6


@st.cache_resource(show_spinner="Drawing new characters…", max_entries=4)
def glyph_pool(seed):
    """Generated characters: [40, 10, 20, 20]. Shared by all sessions, never changed."""
    return sample_glyph_pool(GLYPH_CHARACTERS, GLYPH_DRAWINGS, seed)


@st.cache_resource(show_spinner="Reading Omniglot (the first time takes about half a minute)…")
def omniglot_test_pool(download):
    """Omniglot's 414 test characters (the paper's split): [414, 20, 20, 20]."""
    return load_omniglot(download=download).images[split_indices("test")]


@st.cache_resource(show_spinner="Reading MNIST…")
def mnist_pool(download):
    """miniMNIST: [10, 20, 20, 20]."""
    return load_mini_mnist(download=download)


POOLS = {GLYPHS: None, OMNIGLOT: omniglot_test_pool, MNIST: mnist_pool}
DOWNLOADS = {OMNIGLOT: "Download Omniglot (about 9 MB, from github.com/brendenlake/omniglot)",
             MNIST: "Download the MNIST test set (about 2 MB)"}


def pool_ui(source, seed):
    """The image pool of a sampled source, or None after saying why it is missing (with a download
    button for the public data sets)."""
    if source == GLYPHS:
        return glyph_pool(seed)
    try:
        return POOLS[source](download=False)
    except DataError as missing:
        st.info(f"{source} are not on this machine. {missing}")
    if st.button(DOWNLOADS[source], icon=":material/download:"):
        try:
            return POOLS[source](download=True)
        except DataError as error:
            st.error(f"The download failed: {error}")
    return None


def new_episode():
    st.session_state["explorer_seed"] = st.session_state.get("explorer_seed", 0) + 1
    from_the_start()


def from_the_start():
    """Another episode: show its first step, not playing."""
    st.session_state["explorer_step"] = 1
    st.session_state["explorer_playing"] = False


def sampled_episode_ui(source, classes):
    """Sampling options and the sampled episode (kept in the session until they change), or None."""
    left, middle, right = st.columns([2, 1, 1])
    samples = left.slider("Drawings per class", 1, GLYPH_DRAWINGS, GLYPH_DRAWINGS, key="explorer_samples",
                          help=f"{classes} classes, each shown this many times: the episode has {classes} × this steps.")
    seed = middle.number_input("Seed", 0, 10**6, key="explorer_seed", help="The same seed gives the same episode.")
    right.button("New episode", on_click=new_episode, icon=":material/casino:", key="explorer_new")
    pool = pool_ui(source, seed)
    if pool is None:
        return None
    key = (source, samples, seed, classes)
    built = st.session_state.get("explorer_episode")
    if built is None or built[0] != key:
        try:
            built = (key, episode_from_pool(pool, classes, samples, seed))
        except EpisodeError as error:
            st.error(f"{error}.")
            return None
        st.session_state["explorer_episode"] = built
        from_the_start()
    return built[1]


def toggle_play(steps):
    playing = not st.session_state.get("explorer_playing", False)
    st.session_state["explorer_playing"] = playing
    if playing and st.session_state.get("explorer_step", 1) >= steps:
        st.session_state["explorer_step"] = 0  # play again from the start (the first tick shows step 1)


def step_header_ui(episode, t):
    """The input of step t and the labels around it."""
    image, label = episode.images[t], episode.labels[t]
    fed = "nothing yet (the first step)" if t == 0 else f"**{episode.label_text(episode.labels[t - 1])}**, the label of step {t}"
    instance = int(episode.instances()[t])
    left, right = st.columns([1, 4])
    left.image(app_common.ink_pixels(image, PREVIEW_SCALE), caption=f"x{t + 1}: the input of step {t + 1}")
    right.markdown(f"**Step {t + 1} of {len(episode)}**  \n"
                   f"Label fed with this input (y of the previous step): {fed}  \n"
                   f"True label of this input: **{episode.label_text(label)}**, shown for the "
                   f"{app_common.ordinal(instance)} time "
                   f"({'a guess is all a model can do' if instance == 1 else 'its label was given before'})")
    predictions = []
    for name, run in episode.runs.items():
        guess = run[t].predicted
        mark = "✓" if guess == label else "✗"
        predictions.append(f"**{name}** predicts **{episode.label_text(guess)}** "
                           f"({100 * float(run[t].probabilities.max()):.0f}%) {mark}")
    right.markdown("  \n".join(predictions))


def step_view_ui(episode, models):
    """The step slider and everything drawn for the chosen step; a fragment, so that moving the slider
    or playing reruns only this part."""
    T = len(episode)
    playing = st.session_state.get("explorer_playing", False)

    @st.fragment(run_every=PLAY_SECONDS if playing else None)
    def view():
        if st.session_state.get("explorer_playing"):
            if st.session_state.get("explorer_step", 1) < T:
                st.session_state["explorer_step"] = st.session_state.get("explorer_step", 1) + 1
            else:
                st.session_state["explorer_playing"] = False
                st.rerun()  # the whole page, so that the timer stops and the button says Play
        st.session_state["explorer_step"] = min(max(st.session_state.get("explorer_step", 1), 1), T)
        t = st.slider("Step", 1, T, key="explorer_step") - 1 if T > 1 else 0  # a slider needs two values
        step_header_ui(episode, t)
        names = [episode.label_text(c) for c in range(episode.classes)]
        figure = viz.probabilities_figure({n: r[t].probabilities for n, r in episode.runs.items()}, names)
        figure.update_layout(height=240)
        st.plotly_chart(figure, key="explorer-probabilities", config={"displayModeBar": False})
        st.html(app_common.strip_html(episode, max(0, t - 11), min(T, t + 12), highlight=t))
        columns = st.columns(len(models))
        for column, (name, model) in zip(columns, models.items()):
            with column:
                st.markdown(f"#### {name}")
                app_memory.memory_panel_ui(episode, name, model, t, key=f"explorer-{name}")

    st.button("Pause" if playing else "Play", on_click=toggle_play, args=(T,), key="explorer_play",
              icon=":material/pause:" if playing else ":material/play_arrow:")
    view()


st.title("Episode explorer")
st.markdown("Replay an episode one step at a time and watch what each model reads and writes. "
            "Green marks the rows just read, orange the rows just written.")

models = app_common.current_models()
source = st.radio("Episode", [SESSION, GLYPHS, OMNIGLOT, MNIST], horizontal=True, key="explorer_source",
                  on_change=from_the_start,
                  help="This session's episode is the one drawn on the Teach page, or loaded from a file in the sidebar.")
if not models:
    st.warning("No model is loaded: choose a checkpoint in the sidebar.")
    st.stop()
classes = next(iter(models.values())).config.classes
if source == SESSION:
    episode = app_common.session_episode()
    if not len(episode):
        st.info("This session's episode is empty: draw and label a few characters on the Teach page, "
                "load an episode file in the sidebar, or pick another source.")
        st.stop()
else:
    episode = sampled_episode_ui(source, classes)
    if episode is None:
        st.stop()
models = app_common.sync_episode(episode, models)
if models:
    step_view_ui(episode, models)
    with st.expander("Accuracy by instance in this episode"):
        st.markdown(app_common.accuracy_table_md(episode))
