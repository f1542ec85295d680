"""Teach: draw a character (or upload a picture), see both models' predictions, give the true label.

Every stroke reruns this page and the models predict the drawing so far from their memories, without
keeping anything; the label buttons commit the step, and the label reaches the models with the next
drawing, as in training. Tests cannot draw on the canvas: they put an image (an array as the canvas
would return, or any picture array) in st.session_state["test_drawing"], which then stands in for it.
"""

import streamlit as st
from streamlit_drawable_canvas import st_canvas

import app_common
import app_memory
from flmn_core import viz
from flmn_core.images import EMPTY_MESSAGE, ImageInputError, image_from_canvas, prepare, read_upload
from flmn_core.interactive import MAX_NAME_LENGTH, EpisodeError

CANVAS_SIDE = 280  # px, as drawing pads for single characters usually are
INKS = {"Black on white": ("#000000", "#ffffff"), "White on black": ("#ffffff", "#000000")}
DEFAULT_PEN = 12  # px on the 280 px canvas: about Omniglot's stroke width once both are 20 x 20
PREVIEW_SCALE = 7  # the 20 x 20 input shown at 140 px, each pixel a sharp block


def input_ui():
    """The canvas, its options and the upload -> (picture or None, where it came from, stroke count)."""
    round_ = st.session_state.setdefault("canvas_round", 0)
    # The ink and pen widgets come after the canvas on the page (its toolbar floats over what is above
    # it), but their values are needed to draw it: read them from the session first.
    ink = st.session_state.get("ink", next(iter(INKS)))
    stroke, background = INKS[ink]
    canvas = st_canvas(stroke_width=st.session_state.get("pen", DEFAULT_PEN), stroke_color=stroke,
                       background_color=background, height=CANVAS_SIDE, width=CANVAS_SIDE, drawing_mode="freedraw",
                       return_image_data=True, key=f"canvas-{round_}-{ink}")
    st.radio("Ink", list(INKS), horizontal=True, key="ink", label_visibility="collapsed")
    strokes = len((canvas.json_data or {}).get("objects", []))
    with st.expander("Pen width, or upload a picture"):
        st.slider("Pen width (pixels)", 4, 30, DEFAULT_PEN, key="pen",
                  help="The models learned from Omniglot's thin pen strokes; a thick pen fills the 20 × 20 input.")
        upload = st.file_uploader("A picture of one character", key=f"upload-{round_}",
                                  help="PNG, JPEG, GIF, BMP or WebP, up to 5 MB.")
    if st.session_state.get("test_drawing") is not None:
        return st.session_state["test_drawing"], "test", strokes
    if upload is not None:
        return read_upload(upload.getvalue(), upload.name), "upload", strokes
    if strokes == 0:
        return None, "canvas", 0
    return image_from_canvas(canvas.image_data), "canvas", strokes


def class_names_ui(episode):
    """Optional names for the labels, kept in the episode (and its file)."""
    # The box always shows the episode's names, so a loaded episode brings its own; typing changes them.
    st.session_state["class_names_text"] = ", ".join(episode.class_names).strip(", ")
    with st.expander("Name the labels (optional)"):
        st.text_input("Names, separated by commas", key="class_names_text", on_change=set_class_names,
                      placeholder=", ".join(f"class {c + 1}" for c in range(episode.classes)),
                      help=f"Up to {episode.classes} names of at most {MAX_NAME_LENGTH} characters, in label order.")


def set_class_names():
    """Callback of the names box: its text -> the episode's class names (extra names are ignored)."""
    episode = st.session_state["episode"]
    names = [n.strip()[:MAX_NAME_LENGTH] for n in st.session_state["class_names_text"].split(",")]
    episode.class_names = (names + [""] * episode.classes)[: episode.classes]


def commit_label(label):
    """Label button callback: the drawing shown becomes a step of the episode; a fresh canvas follows."""
    episode = st.session_state["episode"]
    try:
        episode.commit(label)
    except EpisodeError as error:
        st.session_state["teach_message"] = f"{error}."
        return
    st.session_state["canvas_round"] += 1
    st.session_state.pop("test_drawing", None)
    st.session_state.pop("teach_message", None)


def undo_step():
    episode = st.session_state["episode"]
    try:
        episode.undo()
        st.session_state.pop("teach_message", None)
    except EpisodeError as error:
        st.session_state["teach_message"] = f"{error}."


def reset_episode():
    st.session_state["episode"].reset()
    st.session_state["canvas_round"] += 1
    st.session_state.pop("test_drawing", None)
    st.session_state.pop("teach_message", None)


def label_buttons_ui(episode, ready):
    """One button per label (keys 1..9 too); each commits the drawing with that label."""
    st.markdown("**Then give its true label**" + (" (or press its number key)" if episode.classes <= 9 else ""))
    with st.container(horizontal=True, gap="small"):
        for label in range(episode.classes):
            st.button(f"Label {episode.label_text(label)}", key=f"label-{label}", on_click=commit_label,
                      args=(label,), disabled=not ready, type="primary",
                      shortcut=str(label + 1) if episode.classes <= 9 else None)


def predictions_ui(episode, steps):
    """Both models' probabilities for the drawing, and what each predicts."""
    names = [episode.label_text(c) for c in range(episode.classes)]
    figure = viz.probabilities_figure({name: s.probabilities for name, s in steps.items()}, names)
    figure.update_layout(height=260)
    st.plotly_chart(figure, key="teach-probabilities", config={"displayModeBar": False})
    st.markdown("  \n".join(f"**{name}** predicts **{episode.label_text(s.predicted)}** "
                            f"({100 * float(s.probabilities.max()):.0f}%)" for name, s in steps.items()))


def memories_ui(episode, models, t, caption):
    """Each model's memory view at step t (0-based; len(episode): the drawing not labelled yet), side by side."""
    st.subheader("Memories")
    st.caption(caption)
    columns = st.columns(len(models))
    for column, name in zip(columns, models):
        with column:
            app_memory.memory_panel_ui(episode, name, models[name], t, key=f"teach-{name}")


def episode_ui(episode):
    """The strip of steps so far, the running accuracy, undo and reset."""
    st.subheader(f"Episode so far: {len(episode)} step{'s' * (len(episode) != 1)}")
    if not len(episode):
        st.caption("Each labelled drawing appears here with each model's prediction, right (✓) or wrong (✗).")
    else:
        first = max(0, len(episode) - app_common.STRIP_STEPS)
        if first:
            st.caption(f"The latest {app_common.STRIP_STEPS} steps; the explorer shows them all.")
        st.html(app_common.strip_html(episode, first))
        st.markdown("**Running accuracy by instance** (the 1st showing of a label is a guess; the 2nd is one-shot):")
        st.markdown(app_common.accuracy_table_md(episode))
    undo, reset, _ = st.columns([1, 1, 4])
    undo.button("Undo last step", on_click=undo_step, disabled=not len(episode), icon=":material/undo:", key="undo")
    with reset.popover("Reset…", disabled=not len(episode), icon=":material/restart_alt:"):
        st.write("Forget the whole episode and start with empty memories?")
        st.button("Yes, start again", on_click=reset_episode, key="reset-confirm")


st.title("Teach the models, one example each")
st.markdown("Draw a character, see what each model thinks it is, then tell them the true label. From the "
            "second drawing of a label on, a model with a working memory should recognise it.")

episode = app_common.session_episode()
models = app_common.sync_episode(episode, app_common.current_models())
if not models:
    st.warning("No model is loaded, so nothing can predict: choose a checkpoint in the sidebar.")
if st.session_state.get("teach_message"):
    st.error(st.session_state["teach_message"])

draw, right = st.columns([1, 2], gap="medium")
with draw:
    st.markdown(f"**Step {len(episode) + 1}: draw one character**")
    st.space("small")  # room for the canvas toolbar, which floats above the canvas
    try:
        picture, source, strokes = input_ui()
    except ImageInputError as error:
        picture, source, strokes = None, "error", 0
        st.error(str(error))
steps = None
with right:
    seen, predicted = st.columns([1, 2.6])
    with seen:
        st.markdown("**What the models see** (20 × 20)")
        if picture is None and source == "canvas":
            st.info("Draw a character on the canvas, or upload a picture of one.")
        elif picture is not None:
            try:
                image = prepare(picture)
            except ImageInputError as error:
                st.warning(str(error) if source != "canvas" else EMPTY_MESSAGE)
            else:
                st.image(app_common.ink_pixels(image, PREVIEW_SCALE))
                st.caption({"canvas": f"From {strokes} stroke{'s' * (strokes != 1)} on the canvas",
                            "upload": "From the uploaded picture", "test": "From a test drawing"}[source])
                steps = episode.predict(models, image) if models else None
    with predicted:
        st.markdown("**What each model predicts**, before it is told")
        if steps:
            predictions_ui(episode, steps)
        else:
            st.caption("The models' probabilities for each label appear here as you draw.")
    label_buttons_ui(episode, ready=steps is not None)
    class_names_ui(episode)

episode_ui(episode)
if steps:
    memories_ui(episode, models, len(episode), "After reading the drawing above, before its label is given. Green: "
                "the rows just read; orange: the rows just written.")
elif len(episode) and models:
    memories_ui(episode, models, len(episode) - 1, f"After step {len(episode)}. Green: the rows just read; orange: "
                "the rows just written.")

st.session_state["last_update_ms"] = app_common.elapsed_ms()
st.caption(f"Server time for this update: {st.session_state['last_update_ms']:.0f} ms")
