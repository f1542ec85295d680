"""Teach: draw a character (or upload a picture), see both models' predictions and memories, give the label.

Every stroke makes the models predict the drawing so far from their memories, without keeping anything;
a label button commits the step, and the label reaches the models with the next drawing, as in training.

Layout: at 1440 x 900 a step needs no scrolling: canvas, label buttons and predictions on the left, the
memories on the right. On a phone the columns stack, so the label buttons sit right under the canvas. The
episode so far (by step, by label, accuracy, undo, save) follows below.

Speed: the page is two fragments. `drawing_ui` (canvas, predictions, memories) reruns alone on every
stroke; when the episode changes (a label, a deletion, undo, reset, names) a callback reruns both it and
`episode_ui` with st.rerun([...keys]), never the sidebar and the page frame.
"""

import functools
import time

import streamlit as st
from streamlit_drawable_canvas import st_canvas

from app_shared import frame, memory
from app_shared.markup import label_md, plain
from flmn_core.data.strokes import CANVAS_SIDE, DEFAULT_PEN
from flmn_core.interactive import figures
from flmn_core.interactive.episode import FULL, MAX_NAME_LENGTH, EpisodeError
from flmn_core.interactive.examples import EXAMPLE_PATH
from flmn_core.interactive.uploads import MAX_UPLOAD_MB, ImageInputError, image_from_canvas, prepare, read_upload

INKS = {"Black on white": ("#000000", "#ffffff"), "White on black": ("#ffffff", "#000000")}
PREVIEW_SIDE = 100  # px: the 20 x 20 input, each pixel a sharp 5 x 5 block
THUMB_SIDE = 40  # px: the per-label view's thumbnails
FRAGMENTS = ["teach-drawing", "teach-episode"]  # what a change of the episode reruns
TOOLBAR_ROOM = 30  # px above the canvas, where its toolbar floats
BUTTONS_WIDTH = 108  # px of the label buttons' column beside the canvas
PROBABILITIES_HEIGHT = 190
# The read alone: it fits beside the canvas at 1440 x 900 and keeps an update quick (bench/app_latency.py);
# the heatmaps are one click away.
TEACH_VIEWS = ("Read",)


# ----------------------------------------------------------------------------------------------------
# Callbacks: they change the episode, then rerun the two fragments (or, for the input, only the drawing's)


def rerun_fragments():
    """Rerun the drawing and the episode, not the whole app (from a callback)."""
    st.rerun(FRAGMENTS)


def newest_input(source):
    """The canvas or the uploader changed: it is the input the models read from now on."""
    st.session_state["teach_input"] = source


def clear_input():
    """A fresh canvas and uploader (the Clear button; the canvas's own toolbar may be hidden on a phone)."""
    st.session_state["canvas_round"] = st.session_state.get("canvas_round", 0) + 1
    st.session_state.pop("teach_input", None)


def commit_label(label):
    """A label button: the drawing shown becomes a step of the episode; a fresh canvas follows."""
    try:
        st.session_state["episode"].commit(label)
    except EpisodeError as error:
        st.session_state["teach_message"] = f"{error}."
        return  # the default rerun of the drawing shows the message
    clear_input()
    st.session_state.pop("teach_message", None)
    rerun_fragments()


def change_episode(action, *args):
    """Undo, reset or delete a step (an InteractiveEpisode method name), then show the episode as it is."""
    try:
        getattr(st.session_state["episode"], action)(*args)
        st.session_state.pop("teach_message", None)
    except EpisodeError as error:
        st.session_state["teach_message"] = f"{error}."
    if action == "reset":
        clear_input()
    rerun_fragments()


def delete_chosen(label):
    """A ✕ pill of a label's drawings: delete that step (the pills then start unselected again)."""
    step = st.session_state[f"delete-{label}"]
    st.session_state[f"delete-{label}"] = None
    if step is not None:
        change_episode("delete", step)


def load_example():
    """"Load the example episode": it replaces the episode exactly as loading its file in the sidebar does."""
    if frame.load_episode_file(EXAMPLE_PATH, "the example episode"):
        st.session_state.pop("teach_message", None)
    else:
        st.session_state["teach_message"] = st.session_state["episode_file_message"][1]
    st.rerun()  # the whole page, not the fragments: its top replays the models over the loaded episode


def set_class_names():
    """The names box: its text -> the episode's class names (extra names are ignored)."""
    episode = st.session_state["episode"]
    names = [n.strip()[:MAX_NAME_LENGTH] for n in st.session_state["class_names_text"].split(",")]
    episode.class_names = (names + [""] * episode.classes)[: episode.classes]
    rerun_fragments()


# ----------------------------------------------------------------------------------------------------
# Plain helpers


def chosen_input(newest, has_drawing, has_upload):
    """Which input the models read -> "canvas", "upload" or None: the newest one that holds something,
    else the other one. newest: "canvas", "upload" or None (nothing touched since the last fresh canvas)."""
    order = ("upload", "canvas") if newest == "upload" else ("canvas", "upload")
    available = {"canvas": has_drawing, "upload": has_upload}
    return next((source for source in order if available[source]), None)


# ----------------------------------------------------------------------------------------------------
# The drawing: canvas, label buttons, predictions (left) and memories (right); reruns on every stroke


def canvas_ui(round_):
    """The canvas -> (its result, its stroke count)."""
    ink = st.session_state.get("ink", next(iter(INKS)))
    stroke, background = INKS[ink]
    canvas = st_canvas(stroke_width=st.session_state.get("pen", DEFAULT_PEN), stroke_color=stroke,
                       background_color=background, height=CANVAS_SIDE, width=CANVAS_SIDE, drawing_mode="freedraw",
                       return_image_data=True, key=f"canvas-{round_}-{ink}",
                       on_change=functools.partial(newest_input, "canvas"))
    return canvas, len((canvas.json_data or {}).get("objects", []))


def options_ui(round_):
    """The ink, and folded away the pen width and the upload -> the uploaded file or None."""
    st.radio("Ink", list(INKS), horizontal=True, key="ink", label_visibility="collapsed")
    with st.expander("Pen width, or upload a picture"):
        st.slider("Pen width (pixels)", 4, 30, DEFAULT_PEN, key="pen",
                  help="Any width works: the models see every drawing at Omniglot's stroke width.")
        return st.file_uploader("A picture of one character", key=f"upload-{round_}",
                                on_change=functools.partial(newest_input, "upload"),
                                help=f"PNG, JPEG, GIF, BMP or WebP, up to {MAX_UPLOAD_MB} MB.")


def input_note(source, strokes, upload):
    """Which input the models read, in words (Markdown-safe)."""
    if source == "upload":
        return f"From the uploaded picture, {plain(upload.name)}" + (
            " (draw on the canvas to use your drawing instead)" if strokes else "")
    return f"From {strokes} stroke{'s' * (strokes != 1)} on the canvas" + (
        f" ({plain(upload.name)} is set aside: upload it again to use it)" if upload is not None else "")


def read_picture(source, canvas, upload):
    """The picture of the chosen input: an uploaded file or the canvas's image. A bad file raises
    ImageInputError (the drawing stays on the canvas, for the person to use)."""
    if source == "upload":
        return read_upload(upload.getvalue(), upload.name)
    return image_from_canvas(canvas.image_data)


def label_buttons_ui(episode, ready):
    """One button per label (keys 1..9 too), each committing the drawing with that label; then Clear."""
    for label in range(episode.classes):
        st.button(f"Label {label_md(episode, label)}", key=f"label-{label}", on_click=commit_label,
                  args=(label,), disabled=not ready, type="primary", width="stretch",
                  shortcut=str(label + 1) if episode.classes <= 9 else None)
    st.button("Clear", key="clear", icon=":material/ink_eraser:", on_click=clear_input, width="stretch",
              help="A fresh canvas, and no uploaded picture (the canvas's own toolbar hides on a phone).")


def predictions_ui(episode, image, note, steps):
    """What the models see (20 x 20) beside both models' probabilities and what each predicts."""
    seen, predicted = st.columns([1, 3.2], gap="small")
    with seen:
        st.html(frame.pixels_html(image, PREVIEW_SIDE, "what the models see"))
    with predicted:
        names = [episode.label_text(c) for c in range(episode.classes)]
        figure = figures.probabilities_figure({name: s.probabilities for name, s in steps.items()}, names,
                                          height=PROBABILITIES_HEIGHT)
        st.plotly_chart(figure, key="teach-probabilities", config={"displayModeBar": False, "staticPlot": True})
    st.caption(note)
    st.markdown("  \n".join(f"**{plain(name)}** predicts **{label_md(episode, s.predicted)}** "
                            f"({100 * float(s.probabilities.max()):.0f}%)" for name, s in steps.items()))


def memories_ui(episode, models, t, caption):
    """Each model's memory view at step t (0-based; len(episode): the drawing not labelled yet), side by side."""
    st.markdown("**Memories**")
    st.caption(caption)
    parts = memory.views_ui("teach-views", TEACH_VIEWS)
    for column, (name, model) in zip(st.columns(len(models), gap="small"), models.items()):
        with column:
            memory.memory_panel_ui(episode, name, model, t, key=f"teach-{name}", parts=parts)


@st.fragment(key="teach-drawing")
def drawing_ui():
    """Canvas, label buttons and predictions on the left, memories on the right."""
    started = time.perf_counter()
    episode, models = frame.session_episode(), frame.current_models()
    round_ = st.session_state.setdefault("canvas_round", 0)
    left, right = st.columns([4.4, 5.6], gap="medium")
    steps = None
    with left:
        st.markdown(f"**Step {len(episode) + 1}: draw one character**")
        st.space(TOOLBAR_ROOM)
        if st.session_state.get("teach_message"):
            st.error(plain(st.session_state["teach_message"]))
        elif episode.full:
            st.info(f"{FULL[0].upper()}{FULL[1:]}.")
        with st.container(horizontal=True, gap="small"):  # on a phone the buttons wrap under the canvas
            canvas, strokes = canvas_ui(round_)
            buttons = st.container(width=BUTTONS_WIDTH, gap="small", key="teach-labels")
        predictions = st.container()  # above the options, filled once the upload is known
        upload = options_ui(round_)
        source = chosen_input(st.session_state.get("teach_input"), strokes > 0, upload is not None)
        with predictions:
            if source is None:
                st.info("Draw a character on the canvas, or upload a picture of one.")
            elif models:
                try:
                    image = prepare(read_picture(source, canvas, upload))
                except ImageInputError as error:  # a bad file is an error; a blank canvas asks for ink
                    (st.error if source == "upload" else st.warning)(plain(error))
                else:
                    steps = episode.predict(models, image)
                    predictions_ui(episode, image, input_note(source, strokes, upload), steps)
        with buttons:  # drawn last, when it is known whether there is something to label
            label_buttons_ui(episode, ready=steps is not None and not episode.full)
    with right:
        if steps:
            memories_ui(episode, models, len(episode), "After reading the drawing, before its label is given. "
                        "In the memories, green: the rows just read; orange: the rows just written.")
        elif len(episode) and models:
            memories_ui(episode, models, len(episode) - 1,
                        f"After step {len(episode)}. In the memories, green: the rows just read; orange: the rows "
                        "just written.")
        else:
            st.caption("The models' memories appear here from the first drawing on.")
    st.session_state["last_update_ms"] = 1000 * (time.perf_counter() - started)
    left.caption(f"Server time for this update: {st.session_state['last_update_ms']:.0f} ms")


# ----------------------------------------------------------------------------------------------------
# The episode so far: by step, by label, accuracy, undo, reset, save; reruns when the episode changes


def strip_ui(episode):
    """The latest steps as a strip of thumbnails with each model's prediction, and the running accuracy."""
    first = max(0, len(episode) - frame.STRIP_STEPS)
    if first:
        st.caption(f"The latest {frame.STRIP_STEPS} steps; the explorer shows them all.")
    st.html(frame.strip_html(episode, first))
    st.markdown("**Running accuracy by instance** (the 1st showing of a label is a guess; the 2nd is one-shot):")
    st.markdown(frame.accuracy_table_md(episode))


def labels_ui(episode):
    """The drawings taught so far grouped by label, with counts; any one can be deleted (the episode is
    then replayed without it). Each label's drawings are one HTML figure and one row of ✕ pills rather
    than a container and a button per drawing: fewer elements for the browser to draw at every label click."""
    used = sorted(set(episode.labels))
    counts = ", ".join(f"label {label_md(episode, c)} × {episode.labels.count(c)}" for c in used)
    st.markdown(f"**By label**: {len(used)} of {episode.classes} labels in use ({counts}). "
                "✕ deletes a drawing: the models then see the episode as if it had never been shown.")
    for column, label in zip(st.columns(len(used), gap="small"), used):
        steps = [t for t, given in enumerate(episode.labels) if given == label]
        with column, st.container(border=True, key=f"teach-class-{label}"):
            st.markdown(f"**Label {label_md(episode, label)}** · {len(steps)}")
            st.html("".join(frame.pixels_html(episode.images[t], THUMB_SIDE, f"{t + 1}") for t in steps))
            st.pills("Delete a drawing", steps, format_func=lambda t: f"✕ {t + 1}", key=f"delete-{label}",
                     on_change=delete_chosen, args=(label,), label_visibility="collapsed",
                     help="Delete this step's drawing")


def class_names_ui(episode):
    """Optional names for the labels, kept in the episode (and its file)."""
    # The box always shows the episode's names, so a loaded episode brings its own; typing changes them.
    st.session_state["class_names_text"] = ", ".join(episode.class_names).strip(", ")
    with st.expander("Name the labels (optional)"):
        st.text_input("Names, separated by commas", key="class_names_text", on_change=set_class_names,
                      placeholder=", ".join(f"class {c + 1}" for c in range(episode.classes)),
                      help=f"Up to {episode.classes} names of at most {MAX_NAME_LENGTH} characters, in label "
                           "order. They are shown as typed, never as formatting or links.")


def actions_ui(episode):
    """Undo, reset, save, and load the example episode (asking first when it would replace an episode)."""
    with st.container(horizontal=True, gap="small"):
        st.button("Undo last step", on_click=change_episode, args=("undo",), disabled=not len(episode),
                  icon=":material/undo:", key="undo")
        with st.popover("Reset…", disabled=not len(episode), icon=":material/restart_alt:"):
            st.write("Forget the whole episode and start with empty memories?")
            st.button("Yes, start again", on_click=change_episode, args=("reset",), key="reset-confirm")
        # The file is made here, whenever the episode changed, not when the button is pressed: its bytes
        # (and so its address) are ready before any click, and a rerun cannot drop them.
        st.download_button("Save episode", data=episode.to_bytes(), file_name="flmn-episode.npz",
                           mime="application/octet-stream", on_click="ignore", disabled=not len(episode),
                           icon=":material/download:", key="teach-save",
                           help="Images, labels, label names and each model's predictions, as a small .npz file.")
        example_help = "Five generated characters, each drawn 3 or 4 times and labelled: no drawing needed."
        if not len(episode):
            st.button("Load the example episode", on_click=load_example, icon=":material/auto_stories:",
                      key="example", help=example_help)
        else:
            with st.popover("Load the example episode…", icon=":material/auto_stories:", help=example_help):
                st.write("Replace this episode with the example? Save it first to keep it.")
                st.button("Yes, load the example", on_click=load_example, key="example-confirm")


@st.fragment(key="teach-episode")
def episode_ui():
    """The strip of steps, the per-label view, the running accuracy, the label names and the actions."""
    episode = frame.session_episode()
    st.subheader(f"Episode so far: {len(episode)} step{'s' * (len(episode) != 1)}")
    if not len(episode):
        st.caption("Each labelled drawing appears here with each model's prediction, right (✓) or wrong (✗).")
    else:
        strip_ui(episode)
        labels_ui(episode)
    class_names_ui(episode)
    actions_ui(episode)


st.title("Teach the models, one example each")
st.caption("Draw a character, see what each model thinks it is, then give its true label. From the second "
           "drawing of a label on, a model with a working memory should recognise it.")
if not frame.sync_episode(frame.session_episode(), frame.current_models()):
    st.warning("No model is loaded, so nothing can predict: choose a checkpoint in the sidebar.")
drawing_ui()
episode_ui()
