"""Any link opens a page: the query strings of the Episode explorer and Play (the pages that read theirs), hand
made and fuzzed, each give the page with the nearest view it can show, never an exception (AppTest)."""

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[1] / "app.py"
PAGES = {"explorer": ("app_pages/explorer.py", "Episode explorer"), "play": ("app_pages/play.py", "Play the model")}
KEYS = ("source", "seed", "samples", "step", "shuffle", "show", "episode", "answers")
# Values a hand-edited or malicious link may hold: digits int() refuses or reads (superscripts, other scripts),
# numbers too long or too large, floats, signs, names of other sources and views, control characters.
NASTY = ["²", "١٢", "𝟗", "9" * 5000, "1e400", "-0", "+3", " 7 ", "nan", "0x10", "session", "glyphs,omniglot",
         "Read,,Memories,Read", "\x00", "\u202e", "../../etc/passwd", "", "🙂" * 300]


def open_page(page, params):
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params.update(params)
    at.switch_page(PAGES[page][0]).run()
    return at


def assert_page_shown(at, page):
    assert not at.exception, at.exception
    assert at.title and at.title[0].value == PAGES[page][1]


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("value", NASTY, ids=[repr(v)[:12] for v in NASTY])
def test_every_parameter_takes_any_value(page, value):
    at = open_page(page, {key: value for key in KEYS})
    assert_page_shown(at, page)


@pytest.mark.parametrize("page", PAGES)
@settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(params=st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=5), st.text(max_size=30), max_size=6))
def test_fuzzed_query_strings_open_the_page(page, params):
    assert_page_shown(open_page(page, params), page)
