"""Teach: draw a character (or upload a picture), see both models' predictions and memories, give the label.

Every stroke makes the models predict the drawing so far from their memories, without keeping anything;
a label button commits the step, and the label reaches the models with the next drawing, as in training.
The teacher chooses how many labels the episode uses (2 up to the fewest the checkpoints tell apart), in the
sidebar.

Layout: at 1440 x 900 a step needs no scrolling: canvas, label buttons and predictions on the left, the
memories on the right. On a phone (390 x 844) the canvas, the label buttons in rows under it and both
predictions share one screen; the memories follow (assets/style.css). The episode so far (by step, by
label, accuracy, undo, save) follows below.

The page lives in its address (`/?episode=<token>&labels=5&flmn=...&mann=...`, app_shared.links): a reload,
Back or a shared link (on the same server) comes back to the same episode, with the drawing not labelled
yet and its strokes still on the canvas.

Speed: the page is two fragments. `drawing_ui` (canvas, predictions, memories) reruns alone on every
stroke; when the episode changes (a label, a deletion, undo, reset, names) a callback reruns both it and
`episode_ui` with st.rerun([...keys]), never the sidebar and the page frame.
"""

import functools
import html
import secrets
import time

import streamlit as st
from streamlit_drawable_canvas import st_canvas

from app_shared import download, frame, links, memory, sources
from app_shared.markup import label_md, plain
from flmn_core.data.strokes import CANVAS_SIDE, DEFAULT_PEN
from flmn_core.interactive import figures
from flmn_core.interactive.episode import FULL, MAX_NAME_LENGTH, EpisodeError
from flmn_core.interactive.examples import EXAMPLE_PATH
from flmn_core.interactive.uploads import MAX_UPLOAD_MB, ImageInputError, image_from_canvas, prepare, read_upload
from flmn_core.plotting import model_colour

INKS = {"Black on white": ("#000000", "#ffffff"), "White on black": ("#ffffff", "#000000")}
PREVIEW_SIDE = 100  # px: the 20 x 20 input, each pixel a sharp 5 x 5 block
COPY_SIDE = 72  # px: the character to copy, smoothed
THUMB_SIDE = 40  # px: the per-label view's thumbnails
LABEL_CARD_WIDTH = 170  # px: one label's card in the per-label view; the cards wrap, 15 labels or 2
FRAGMENTS = ["teach-drawing", "teach-episode"]  # what a change of the episode reruns
TOOLBAR_ROOM = 30  # px above the canvas, where its toolbar floats
WIDE_BUTTONS = 6  # up to this many labels, one column of named buttons beside the canvas; more: two columns
BUTTONS_WIDTH = 100  # px of the label buttons' column (or two of numbers) beside the canvas; fits at 1400 px
PROBABILITIES_HEIGHT = 160
# Keys of the label buttons: 1..9, 0 for the 10th, Shift+1..Shift+5 for the 11th to the 15th.
SHORTCUTS = [str(k) for k in range(1, 10)] + ["0"] + [f"shift+{k}" for k in range(1, 6)]
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
    st.session_state.pop("teach_kept", None)


def commit_label(label, round_):
    """A label button: the drawing shown on canvas round `round_` becomes a step of the episode; a fresh
    canvas follows. A click that reaches the server again after its canvas was replaced (Streamlit hands
    a click to the run that interrupts its own) is the same click: it is not given twice."""
    if round_ != st.session_state.get("canvas_round", 0):
        return
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


def set_classes():
    """The Labels box: the episode uses that many labels from now on (never fewer than those given)."""
    episode = st.session_state["episode"]
    try:
        episode.set_classes(st.session_state["teach_classes"])
        st.session_state.pop("teach_message", None)
    except EpisodeError as error:
        st.session_state["teach_message"] = f"{error}."
    st.session_state["teach_classes"] = episode.classes
    st.rerun()  # the whole page: the address holds the number of labels


def another_character():
    """"Another character": the next character to copy."""
    st.session_state["teach_copy_turn"] = st.session_state.get("teach_copy_turn", 0) + 1


# ----------------------------------------------------------------------------------------------------
# Plain helpers


def chosen_input(newest, has_drawing, has_upload, has_kept):
    """Which input the models read -> "canvas", "upload", "kept" or None: the newest one that holds
    something, else the other one; "kept" (the drawing predicted before a reload) while the canvas that
    shows its strokes has sent nothing new. newest: "canvas", "upload" or None (nothing touched since the
    last fresh canvas)."""
    order = ("upload", "canvas", "kept") if newest == "upload" else ("canvas", "upload", "kept")
    available = {"canvas": has_drawing, "upload": has_upload, "kept": has_kept}
    return next((source for source in order if available[source]), None)


def input_note(source, strokes, upload):
    """Which input the models read, in words (Markdown-safe)."""
    if source == "kept":
        return (f"From the {strokes} stroke{'s' * (strokes != 1)} drawn before the page was reloaded"
                if strokes else "From the picture shown before the page was reloaded")
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


def prediction_html(episode, name, step):
    """One model's prediction in words, after a square of its colour (the chart's bars have no legend here):
    '■ <b>flmn-conv</b> predicts <b>2</b> (87%)'."""
    probabilities = step.probabilities
    text = (f'<span style="color:{model_colour(name)}">■</span> <b>{html.escape(name)}</b> predicts '
            f"<b>{html.escape(episode.label_text(step.predicted))}</b> ({100 * float(probabilities.max()):.0f}%)")
    if len(probabilities) > episode.classes:
        text += f"; {100 * float(probabilities[episode.classes:].sum()):.0f}% on labels not in use"
    return text


# ----------------------------------------------------------------------------------------------------
# The drawing: canvas, label buttons, predictions (left) and memories (right); reruns on every stroke


def canvas_ui(round_, kept):
    """The canvas -> (its result, its stroke count). The strokes of a drawing kept over a reload are drawn
    on it again (the canvas's first round after the reload)."""
    ink = st.session_state.get("ink", next(iter(INKS)))
    stroke, background = INKS[ink]
    canvas = st_canvas(stroke_width=st.session_state.get("pen", DEFAULT_PEN), stroke_color=stroke,
                       background_color=background, height=CANVAS_SIDE, width=CANVAS_SIDE, drawing_mode="freedraw",
                       initial_drawing=kept.strokes if kept is not None else None, return_image_data=True,
                       key=f"canvas-{round_}-{ink}", on_change=functools.partial(newest_input, "canvas"))
    return canvas, len((canvas.json_data or {}).get("objects", []))


def options_ui(round_):
    """The ink; folded away, the pen width and the upload -> the uploaded file or None."""
    st.radio("Ink", list(INKS), horizontal=True, key="ink", label_visibility="collapsed")
    with st.expander("Pen width, or upload a picture"):
        st.slider("Pen width (pixels)", 4, 30, DEFAULT_PEN, key="pen",
                  help="Any width works: the models see every drawing at Omniglot's stroke width.")
        return st.file_uploader("A picture of one character", key=f"upload-{round_}",
                                on_change=functools.partial(newest_input, "upload"),
                                help=f"PNG, JPEG, GIF, BMP or WebP, up to {MAX_UPLOAD_MB} MB.")


def label_buttons_ui(episode, ready, round_):
    """One button per label (keys 1..9, 0, Shift+1..5 too), each committing the drawing with that label;
    then Clear. Up to WIDE_BUTTONS labels the buttons carry their names; more: the numbers, names in the tip."""
    many = episode.classes > WIDE_BUTTONS
    with st.container(horizontal=many, gap="small", key="teach-label-grid" if many else "teach-label-column"):
        for label in range(episode.classes):
            name = episode.class_names[label]
            st.button(label_md(episode, label) if many else f"Label {label_md(episode, label)}",
                      key=f"label-{label}", on_click=commit_label, args=(label, round_), disabled=not ready,
                      type="primary", width="stretch", shortcut=SHORTCUTS[label] if label < len(SHORTCUTS) else None,
                      help=(f"Label {label + 1}" + (f": {plain(name)}" if name else "")) if many else None)
        st.button("Clear", key="clear", icon=":material/ink_eraser:", on_click=clear_input, width="stretch",
                  help="A fresh canvas, and no uploaded picture (the canvas's own toolbar hides on a phone).")


def predictions_ui(episode, image, note, steps):
    """What the models see (20 x 20) beside both models' probabilities and what each predicts."""
    with st.container(horizontal=True, gap="small", key="teach-predictions"):  # side by side on a phone too
        st.html(frame.pixels_html(image, PREVIEW_SIDE, "what the models see"), width="content")
        figure = figures.probabilities_figure({name: s.probabilities for name, s in steps.items()},
                                              episode.label_texts(), height=PROBABILITIES_HEIGHT, legend=False)
        st.plotly_chart(figure, key="teach-probabilities", config={"displayModeBar": False, "staticPlot": True})
    st.html(f'<p class="flmn-predictions">{"<br/>".join(prediction_html(episode, n, s) for n, s in steps.items())}</p>')
    st.caption(note)


def copy_ui(episode):
    """A character to copy, the way Omniglot's drawings were made: one drawing of one of the episode's
    characters (held-out Omniglot characters when the data is here, else generated ones), with the label
    it goes with, so that characters come back and the models have something to recognise. Shown while the
    Copy a character switch (step_heading_ui) is on."""
    if not st.session_state.get("teach_copy"):
        return
    turn = len(episode) + st.session_state.get("teach_copy_turn", 0)
    seed = st.session_state.setdefault("teach_copy_seed", secrets.randbelow(sources.MAX_SEED))
    image, label, source = sources.character_to_copy(episode.classes, seed, turn)
    with st.container(horizontal=True, gap="small", vertical_alignment="center", key="teach-copy"):
        st.html(frame.pixels_html(image, COPY_SIDE, "", smooth=True), width="content")
        with st.container(gap=None):
            st.markdown(f"Copy this character, then give it label **{label_md(episode, label)}**.")
            st.caption(source)
        st.button("", key="teach-copy-next", on_click=another_character, icon=":material/casino:",
                  help="Another character")


def memories_ui(episode, models, t):
    """Each model's memory view at step t (0-based; len(episode): the drawing not labelled yet), side by side,
    under a caption true of the step and of the views chosen."""
    st.markdown("**Memories**")
    parts = memory.views_ui("teach-views", TEACH_VIEWS)
    if t == len(episode):
        caption = "After reading the drawing, before its label is given: which rows hold its class is not known yet."
    else:
        caption = f"After step {t + 1}, its label given: ◆ marks the rows holding earlier drawings of that label."
    if {"feature_memory", "label_memory", "memory", "addressing"} & set(parts):
        caption += " In the heatmaps, green: the rows just read; orange: the rows just written."
    st.caption(caption)
    memory.memory_panels_ui(episode, models, t, "teach", parts)


@st.fragment(key="teach-drawing")
def drawing_ui():
    """Canvas, label buttons and predictions on the left, memories on the right."""
    started = time.perf_counter()
    episode = frame.session_episode()
    models = frame.runnable_models(episode)
    round_ = st.session_state.setdefault("canvas_round", 0)
    kept = st.session_state.get("teach_kept")
    left, right = st.columns([4.4, 5.6], gap="medium")
    steps = None
    with left:
        with st.container(horizontal=True, vertical_alignment="center", gap="small", key="teach-step"):
            st.markdown(f"**Step {len(episode) + 1}: draw one character**", width="content")
            st.toggle("Copy a character", key="teach_copy", help="Shows a character to draw, the way Omniglot's "
                      "drawers were shown one. Each character of this episode goes with one label.")
        # Nothing before the canvas in this column appears or goes from one run to the next: an element
        # that did would move the canvas in the page, and the browser would make a new, empty one. The
        # character to copy comes and goes inside a container that is always there.
        with st.container():
            copy_ui(episode)
        st.space(TOOLBAR_ROOM)
        with st.container(horizontal=True, gap="small"):  # on a phone the buttons wrap under the canvas
            canvas, strokes = canvas_ui(round_, kept)
            buttons = st.container(width=BUTTONS_WIDTH, gap="small", key="teach-labels")
        predictions = st.container()  # above the options, filled once the upload is known
        upload = options_ui(round_)
        has_kept = kept is not None and kept.pending is not None and canvas.image_data is None
        source = chosen_input(st.session_state.get("teach_input"), canvas.image_data is not None and strokes > 0,
                              upload is not None, has_kept)
        with predictions:
            if st.session_state.get("teach_message"):
                st.error(plain(st.session_state["teach_message"]))
            elif episode.full:
                st.info(f"{FULL[0].upper()}{FULL[1:]}.")
            if source is None:
                st.info("Draw a character on the canvas, or upload a picture of one. No idea what to draw? "
                        "Turn on *Copy a character*.")
            elif models:
                try:
                    image = kept.pending if source == "kept" else prepare(read_picture(source, canvas, upload))
                except ImageInputError as error:  # a bad file is an error; a blank canvas asks for ink
                    (st.error if source == "upload" else st.warning)(plain(error))
                else:
                    steps = episode.predict(models, image)
                    predictions_ui(episode, image, input_note(source, strokes, upload), steps)
        with buttons:  # drawn last, when it is known whether there is something to label
            label_buttons_ui(episode, steps is not None and not episode.full, round_)
    with right:
        if steps:
            memories_ui(episode, models, len(episode))
        elif len(episode) and models:
            memories_ui(episode, models, len(episode) - 1)
        else:
            st.caption("The models' memories appear here from the first drawing on.")
    links.stash(episode, canvas.json_data if source in ("canvas", "kept") else None)
    st.session_state["last_update_ms"] = 1000 * (time.perf_counter() - started)


# ----------------------------------------------------------------------------------------------------
# The episode so far: by step, by label, accuracy, undo, reset, save; reruns when the episode changes


def strip_ui(episode):
    """The latest steps as a strip of thumbnails with each model's prediction, and the running accuracy as
    a table and, beside it, a chart."""
    first = max(0, len(episode) - frame.STRIP_STEPS)
    if first:
        st.caption(f"The latest {frame.STRIP_STEPS} steps; the explorer shows them all.")
    st.html(frame.strip_html(episode, first))
    table, chart = st.columns([3, 2], gap="medium")
    with table:
        st.markdown("**Running accuracy by instance** (the 1st showing of a label is a guess; the 2nd is one-shot):")
        st.markdown(frame.accuracy_table_md(episode))
    if episode.runs:
        chart.html(frame.accuracy_chart_html(episode))


def labels_ui(episode):
    """The drawings taught so far grouped by label, with counts; any one can be deleted (the episode is
    then replayed without it). Each label's drawings are one HTML figure and one row of ✕ pills rather
    than a container and a button per drawing: fewer elements for the browser to draw at every label click.
    The labels' cards wrap, so that 15 labels stay as readable as 2."""
    used = sorted(set(episode.labels))
    counts = ", ".join(f"label {label_md(episode, c)} × {episode.labels.count(c)}" for c in used)
    st.markdown(f"**By label**: {len(used)} of {episode.classes} labels in use ({counts}). "
                "✕ deletes a drawing: the models then see the episode as if it had never been shown.")
    with st.container(horizontal=True, gap="small", key="teach-by-label"):
        for label in used:
            steps = [t for t, given in enumerate(episode.labels) if given == label]
            with st.container(border=True, key=f"teach-class-{label}", width=LABEL_CARD_WIDTH):
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
        download.save_button_ui("teach-save", "Save episode", episode.to_bytes, "flmn-episode.npz",
                                disabled=not len(episode),
                                help="Images, labels, label names and each model's predictions, as a small .npz file.")
        example_help = "Five generated characters, each drawn 3 or 4 times and labelled: no drawing needed."
        if not len(episode):
            st.button("Load the example episode", on_click=load_example, icon=":material/auto_stories:",
                      key="example", help=example_help)
        else:
            with st.popover("Load the example episode…", icon=":material/auto_stories:", help=example_help):
                st.write("Replace this episode with the example? Save it first to keep it.")
                st.button("Yes, load the example", on_click=load_example, key="example-confirm")


def classes_ui(episode):
    """Sidebar, under the checkpoints: how many labels the episode uses. In the page's full runs only (a
    stroke or a label reruns the fragments alone), as the checkpoints that bound it."""
    st.session_state["teach_classes"] = episode.classes
    st.sidebar.number_input("Labels in this episode", frame.MIN_CLASSES,
                            max(frame.MIN_CLASSES, frame.most_classes(), episode.classes), key="teach_classes",
                            on_change=set_classes,
                            help=f"2 to {frame.most_classes()}, the most the checkpoints chosen tell apart. Labels "
                                 "already given stay in use.")


def developer_ui():
    """For a developer, out of a student's way: how long the server took for the last update."""
    with st.expander("For developers"):
        milliseconds = st.session_state.get("last_update_ms", 0)
        st.caption(f"Server time for the last update of the drawing: {milliseconds:.0f} ms "
                   "(bench/app_latency.py measures what a person waits for in a browser).")


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
    developer_ui()


st.title("Teach the models, one example each")
st.caption("Draw a character, see what each model thinks it is, then give its true label. From the second "
           "drawing of a label on, a model with a working memory should recognise it.")
if not frame.sync_episode(frame.session_episode(), frame.current_models()):
    st.warning("No model is loaded, so nothing can predict: choose a checkpoint in the sidebar.")
classes_ui(frame.session_episode())
drawing_ui()
episode_ui()
links.address_ui({links.TOKEN: links.episode_token(), "labels": frame.session_episode().classes})
