"""Text that a person typed or a file supplied shows as text on every page (AppTest, no browser): label names
on Teach, the Episode explorer and the memory panel, file names and the messages that quote them in the
sidebar, on Teach and on Play, and what a checkpoint's error quotes. Nothing of it may act as Markdown, HTML,
a Streamlit directive, LaTeX or a bare web or mail address that Streamlit's Markdown turns into a link.

The oracle reads each element's Markdown as Streamlit's renderer does: backslash escapes resolved, then the
renderer's own patterns for bare addresses (copied from its bundle, static/js/StreamlitMarkdown*.js) applied
to the text that is left. tests/test_markup_browser.py checks the same names in a real chromium."""

import io
import json
import re
import shutil
from pathlib import Path

import fake_canvas
import pytest
import torch
from streamlit.testing.v1 import AppTest

from app_shared.markup import WORD_JOINER, plain
from flmn_core.data.glyphs import make_alphabet, render
from flmn_core.interactive.episode import InteractiveEpisode
from flmn_core.interactive.uploads import prepare
from flmn_core.model import zoo

APP = Path(__file__).resolve().parents[1] / "app.py"
TIMEOUT = 60
PAGES = {"teach": "app_pages/teach.py", "play": "app_pages/play.py", "explorer": "app_pages/explorer.py"}
SHIPPED = FLMN, MANN = zoo.default("flmn").name, zoo.default("mann").name
# Label names as a stranger's episode file or a person could give them (at most 40 characters, no commas):
# an image, a link, a bare web address, a mail address, and directives, LaTeX and HTML. "zq" marks them.
NAMES = ["![zq](http://127.0.0.1:9/x.png)", "[zq](http://127.0.0.1:9/)", "www.zq.org/x",
         "zq@example.org", ":red[zq] $x$ <b>zq</b> **zq**"]
FILE_NAME = "![zq](http://127.0.0.1:9/f.png) www.zq.org.npz"
# Characters Markdown, Streamlit's directives or LaTeX act on; a backslash before any ASCII punctuation
# (PUNCTUATION) makes it a plain character (CommonMark).
ACTIVE = set("\\`*_{}[]<>#!|~:$&^")
# Streamlit's Markdown makes links of these in the text left after its escapes are resolved.
BARE_WEB = re.compile(r"(https?://|www(?=\.))[-.\w]+", re.IGNORECASE | re.ASCII)
BARE_MAIL = re.compile(r"[-.\w+]+@[-\w]+(?:\.[-\w]+)+", re.ASCII)


PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


def read_markdown(text):
    """Markdown text -> [(a character it shows, whether it came escaped)], backslash escapes resolved."""
    shown, position = [], 0
    while position < len(text):
        if text[position] == "\\" and position + 1 < len(text) and text[position + 1] in PUNCTUATION:
            shown.append((text[position + 1], True))
            position += 2
        else:
            shown.append((text[position], False))
            position += 1
    return shown


def acting_in(text, supplied):
    """Where Markdown text shows a supplied text (as typed, the invisible word joiners aside) -> (whether
    it shows any, what acts inside those places: active characters that came unescaped, and bare
    addresses that would become links overlapping them)."""
    characters = read_markdown(text)
    resolved = "".join(char for char, _ in characters)  # what the renderer's address patterns read
    links = [m.span() for pattern in (BARE_WEB, BARE_MAIL) for m in pattern.finditer(resolved)]
    visible = [(index, char, escaped) for index, (char, escaped) in enumerate(characters) if char != WORD_JOINER]
    visible_text = "".join(char for _, char, _ in visible)
    shown, acting = False, []
    for match in re.finditer(re.escape(supplied), visible_text):
        shown = True
        inside = visible[match.start():match.end()]
        first, last = inside[0][0], inside[-1][0] + 1
        acting += [char for _, char, escaped in inside if char in ACTIVE and not escaped]
        acting += [resolved[a:b] for a, b in links if a < last and b > first]
    return shown, acting


def markdown_texts(at):
    """Every text on the page (sidebar included) that Streamlit renders as Markdown."""
    kinds = ("markdown", "caption", "title", "header", "subheader", "error", "warning", "info", "success")
    texts = [str(element.value) for kind in kinds for element in getattr(at, kind)]
    texts += [button.label for button in at.button] + [expander.label for expander in at.expander]
    return texts + [str(option) for radio in at.radio for option in radio.options]


def check_shown_as_text(at, supplied):
    """Each supplied text is shown as typed by some Markdown on the page, and nothing of it acts."""
    texts = markdown_texts(at)
    for text in supplied:
        readings = [(page_text, *acting_in(page_text, text)) for page_text in texts]
        assert any(shown for _, shown, _ in readings), f"{text!r} is not shown as typed"
        for page_text, _, acting in readings:
            assert not acting, f"{page_text!r} makes {acting} of {text!r} act as Markdown"


def check_charts_and_html_escape(at):
    """Plotly charts and the app's own HTML show the names escaped, never as tags."""
    specs = " ".join(json.dumps(json.loads(chart.proto.spec)) for chart in at.get("plotly_chart"))  # < unescaped
    bodies = " ".join(str(element.proto.body) for element in at.get("html"))
    for raw in ("<b>zq</b>",):
        assert raw not in specs and raw not in bodies
    assert "&lt;b&gt;zq&lt;/b&gt;" in specs + bodies


def drawing(character, drawer):
    return render(make_alphabet(3, seed=7)[character], drawer_seed=drawer)


def named_episode_file():
    """An episode file of 10 steps (5 labels, each twice) whose label names are NAMES."""
    labels = [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]
    images = torch.stack([prepare(drawing(c % 3, t)) for t, c in enumerate(labels)])
    return InteractiveEpisode.from_sequence(images, labels, 5, class_names=NAMES).to_bytes()


def start(page, **params):
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.query_params.update(params)
    at.switch_page(PAGES[page]).run()
    assert not at.exception, at.exception
    return at


def load_file(at, data, name=FILE_NAME):
    at.file_uploader(key=f"episode_upload_{at.session_state['episode_upload_round']}").set_value(
        (name, data, "application/octet-stream")).run()
    assert not at.exception, at.exception


@pytest.fixture(autouse=True)
def canvas(monkeypatch):
    return fake_canvas.install(monkeypatch)


def test_the_escaping_keeps_every_character_and_stops_every_link():
    for text in NAMES + [FILE_NAME, "http://a.b https://c.d WWW.E.F g@h.ij", "\\*", "www."]:
        assert acting_in(f"**{plain(text)}**", text) == (True, []), text
    assert acting_in(NAMES[2], NAMES[2]) == (True, ["www.zq.org"])  # the oracle sees what plain stops
    assert plain("a\n- b\r\n# c\u2028= d") == r"a - b \# c = d"  # no line of its own: no list, no heading
    assert acting_in(NAMES[0].replace(":", "\\:"), NAMES[0])[1] == ["!", "[", "]", "http://127.0.0.1"]


def test_teach_shows_typed_names_and_file_names_as_text(canvas):
    at = start("teach")
    at.text_input(key="class_names_text").set_value(", ".join(NAMES)).run()
    for step, value in enumerate([1, 2, 1]):
        canvas.draw(drawing(value % 3, step))
        at.run()
        at.button(key=f"label-{value - 1}").click().run()
    canvas.draw(drawing(0, 9))  # a drawing predicted, not labelled: the predictions and the memories show it
    at.run()
    check_shown_as_text(at, NAMES)
    check_charts_and_html_escape(at)
    upload = f"upload-{at.session_state['canvas_round']}"
    at.file_uploader(key=upload).set_value((FILE_NAME.replace(".npz", ".png"), b"not a picture", "image/png")).run()
    assert "is damaged" in " ".join(e.value for e in at.error) or at.error
    check_shown_as_text(at, [FILE_NAME.replace(".npz", ".png")])


def test_the_explorer_and_its_memory_panels_show_a_files_names_as_text():
    at = start("explorer")
    load_file(at, named_episode_file())
    assert at.radio(key="explorer_source").value == "session"
    next(s for s in at.slider if s.label == "Step").set_value(7).run()
    at.session_state[f"explorer-{FLMN}-surgery"] = True  # the surgery section open, a label's rows wiped
    at.run()
    at.selectbox(key=f"explorer-{FLMN}-label").set_value(0).run()
    assert not at.exception, at.exception
    check_shown_as_text(at, NAMES + [FILE_NAME])
    check_charts_and_html_escape(at)
    assert any("With the surgery" in text for text in markdown_texts(at))


def test_play_shows_a_files_name_as_text_in_the_sidebar():
    at = start("play", source="glyphs")
    load_file(at, named_episode_file())
    check_shown_as_text(at, [FILE_NAME])
    load_file(at, b"not an episode file", name=FILE_NAME.replace("f.png", "g.png"))
    check_shown_as_text(at, [FILE_NAME.replace("f.png", "g.png")])


def test_a_checkpoints_error_quoting_its_content_shows_as_text(tmp_path, monkeypatch):
    for name in SHIPPED:
        shutil.copy(zoo.weights_path(name), tmp_path / f"{name}.pt")
    payload = torch.load(tmp_path / f"{FLMN}.pt", weights_only=True)
    payload["config"] = {**payload["config"], NAMES[0]: 1}  # an unknown setting, named in the message
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    (tmp_path / f"{FLMN}.pt").write_bytes(buffer.getvalue())
    monkeypatch.setenv("FLMN_CHECKPOINT_DIR", str(tmp_path))
    at = start("teach")
    assert "does not know" in " ".join(e.value for e in at.error)
    check_shown_as_text(at, [NAMES[0]])
