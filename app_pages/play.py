"""Play the model (human mode): the person takes the models' test on an episode of characters nobody has
learned, Omniglot's held-out test characters when the data is here, else characters generated on the spot.

Exactly the models' protocol: each drawing is shown once, the person answers its label, and the true label
comes one step later, with the next drawing. At the end: the person's per-instance score beside Santoro et
al.'s human players and both models' scores on the same episode. The game lives in the URL
(`/play?source=glyphs&seed=3&samples=10&answers=0214`): a reload goes on where it was.
"""

from itertools import takewhile

import streamlit as st

from app_shared import frame, links, sources
from app_shared.links import link_int
from app_shared.markup import plain
from app_shared.sources import GLYPH_DRAWINGS, GLYPHS, MAX_SEED, OMNIGLOT, SOURCES
from flmn_core import DataError
from flmn_core.interactive.episode import (
    EpisodeError,
    InteractiveEpisode,
    episode_from_pool,
)
from flmn_core.interactive.human import HumanPlay
from flmn_core.plotting import colour_by_model
from flmn_core.results import figures as result_figures
from flmn_core.results import markdown, paper

IMAGE_SIDE = 200  # px: the 20 x 20 input, pixel for pixel what the models see
FEEDBACK_SIDE = 80
YOU = "You"


def default_source():
    """Omniglot's test characters when their files are on this machine, else generated characters."""
    try:
        sources.load_pool(OMNIGLOT, 0)
    except DataError:
        return GLYPHS
    return OMNIGLOT


def first_game(params):
    """The game a visit starts from, read from the link: source, seed, drawings per class, answers so far."""
    source = params.get("source")
    answers = params.get("answers", "")
    return {"source": source if source in SOURCES else default_source(),
            "seed": link_int(params, "seed", 0, MAX_SEED, 0),
            "samples": link_int(params, "samples", 1, GLYPH_DRAWINGS, GLYPH_DRAWINGS),
            # ASCII digits only: str.isdigit takes "²", which int refuses
            "answers": [int(a) - 1 for a in answers if "1" <= a <= "9"]}


def game_address_ui(game, play):
    """Put the game in the address (answers as 1-based digits), so that a reload or a link resumes it."""
    links.address_ui({"source": game["source"], "seed": game["seed"], "samples": game["samples"],
                      "answers": "".join(str(a + 1) for a in play.answers) if play else ""})


def new_game():
    """Another episode: the next seed, no answers."""
    game = st.session_state["play_game"]
    game["seed"], game["answers"] = (game["seed"] + 1) % (MAX_SEED + 1), []
    st.session_state.pop("play", None)
    st.session_state["play_seed"] = game["seed"]


def restart():
    """Forget the answers given: the same episode from its first drawing."""
    st.session_state["play_game"]["answers"] = []
    st.session_state.pop("play", None)


def answer(label):
    """Callback of an answer button."""
    st.session_state["play"][1].answer(label)


def settings_ui(game):
    """Which characters, how many drawings of each, which episode; a change starts a new game."""
    with st.expander("Game settings", expanded=False, icon=":material/tune:"):
        left, middle, right = st.columns([2, 2, 1])
        for key, name in (("play_source", "source"), ("play_samples", "samples"), ("play_seed", "seed")):
            if key not in st.session_state:
                st.session_state[key] = game[name]
        game["source"] = left.radio("Characters", list(SOURCES), format_func=SOURCES.get, key="play_source",
                                    on_change=restart, help="Omniglot's held-out test characters are what "
                                    "Santoro et al.'s people and the models were tested on.")
        game["samples"] = middle.slider("Drawings per class", 1, GLYPH_DRAWINGS, key="play_samples",
                                        on_change=restart, help="10 reaches the papers' 10th instance; fewer is quicker.")
        game["seed"] = right.number_input("Episode", 0, MAX_SEED, key="play_seed", on_change=restart,
                                          help="The same number gives the same episode.")
    if game["source"] == GLYPHS and default_source() == GLYPHS:  # chosen for want of Omniglot, not by the person
        st.caption("Generated characters (no data needed). The papers' test uses Omniglot's held-out characters: "
                   f"start the app with `{sources.RUN_WITH_DATA}` to play on them.")


def current_game_ui(game, classes):
    """The game of the settings (kept in the session while they stay the same), or None after saying why."""
    pool = sources.pool_ui(game["source"], game["seed"])
    if pool is None:
        return None
    key = (game["source"], game["seed"], game["samples"], classes)
    kept = st.session_state.get("play")
    if kept is None or kept[0] != key:
        try:
            episode = episode_from_pool(pool, classes, game["samples"], game["seed"])
            given = list(takewhile(lambda a: a < classes, game["answers"]))[:len(episode)]  # a link's valid part
            play = HumanPlay(episode.images, episode.labels, classes, given)
        except EpisodeError as error:
            st.error(plain(f"{error}."))
            return None
        kept = (key, play)
        st.session_state["play"] = kept
    return kept[1]


def turn_ui(play):
    """One drawing to answer, with the true label of the previous one."""
    t, T = play.step, len(play)
    st.progress(t / T, text=f"Drawing {t + 1} of {T}")
    left, right = st.columns([1, 2])
    left.html(frame.pixels_html(play.current(), IMAGE_SIDE, "Which label is this?"))
    with right:
        st.markdown("**Your answer:**")
        for column, label in zip(st.columns(play.classes), range(play.classes)):
            column.button(f"{label + 1}", key=f"play-answer-{label}", on_click=answer, args=(label,),
                          width="stretch")
        feedback = play.feedback()
        if feedback is None:
            st.info("The first drawing: its label can only be guessed. You are told the true label with the next one.")
        else:
            image, truth, given = feedback
            verdict = "right ✓" if given == truth else f"you answered {given + 1} ✗"
            st.html(frame.pixels_html(image, FEEDBACK_SIDE))
            st.markdown(f"The previous drawing was label **{truth + 1}** ({verdict}).")


def score_table_md(rows, instances):
    """The score table: rows {name: (correct list, total list)} or {name: paper.Published}, columns the
    papers' instances this episode reaches."""
    lines = []
    for name, row in rows.items():
        if isinstance(row, paper.Published):
            cells = [f"{row.accuracy[k]:.1f}%" if k in row.accuracy else "–" for k in instances]
        else:
            correct, total = row
            cells = [f"{100 * correct[k - 1] / total[k - 1]:.0f}% ({correct[k - 1]}/{total[k - 1]})"
                     if total[k - 1] else "–" for k in instances]
        lines.append([name, *cells])
    return markdown.table(["who", *(markdown.ordinal(k) for k in instances)], lines)


def scores_ui(play, models):
    """The end: the person's per-instance score beside Santoro et al.'s human players and both models on
    the same episode, as a table and a plot."""
    episode = InteractiveEpisode.from_sequence(play.images, play.labels, play.classes)
    episode.sync(models)
    samples = int(play.instances().max())
    instances = [k for k in paper.TABLE_INSTANCES if k <= samples]
    counts = {YOU: play.instance_accuracy(samples)}
    counts |= {name: episode.instance_accuracy(name, samples) for name in models}
    rows = {YOU: counts[YOU], "Santoro et al.'s human players (Omniglot)": paper.HUMAN}
    rows |= {name: counts[name] for name in models}
    st.subheader("Your score")
    correct, total = counts[YOU]
    st.markdown(f"You answered {sum(correct)} of {sum(total)} drawings right; from the 2nd instance on, "
                f"{sum(correct[1:])} of {sum(total[1:])}.")
    st.markdown(score_table_md(rows, instances))
    series = {name: {"accuracy": [c / n if n else float("nan") for c, n in zip(*counted)]}
              for name, counted in counts.items()}
    series["Human players (Santoro et al. 2016, Table 1)"] = paper.HUMAN.series()
    figure = result_figures.instance_accuracy_figure(series, title="Accuracy by instance on this episode")
    st.plotly_chart(colour_by_model(figure), key="play-scores")
    with st.expander("The episode, with both models' predictions"):
        st.html(frame.strip_html(episode))


st.title("Play the model")
st.markdown("Take the test the models take. You will see drawings of five characters you have never learned, "
            "in random order, each labelled 1 to 5 at random. Answer each drawing's label; the true label "
            "comes with the next drawing, exactly as the models get it. A character's first drawing can "
            "only be guessed; after that, it is up to your memory. Santoro et al. (2016) had people play "
            "this game: your score appears beside theirs and the models' at the end.")

if "play_game" not in st.session_state:  # a new session: a first visit, a reload or a shared link
    st.session_state["play_game"] = first_game(links.first_params())
game = st.session_state["play_game"]
models = frame.current_models()
classes = min(frame.DEFAULT_CLASSES, frame.most_classes())  # Santoro et al.'s game: five characters
settings_ui(game)
play = current_game_ui(game, classes)
game_address_ui(game, play)
if play is not None:
    game["answers"] = play.answers
    if not play.done:
        turn_ui(play)
    elif not models:
        st.warning("No model is loaded: choose a checkpoint in the sidebar to compare your score.")
    else:
        scores_ui(play, models)
    left, right = st.columns(2)
    left.button("Start this episode again", on_click=restart, icon=":material/replay:", key="play-restart")
    right.button("New episode", on_click=new_game, icon=":material/casino:", key="play-new")
