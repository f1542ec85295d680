"""Where the Episode explorer and human mode get their characters, and the links that reproduce an episode.

Three sources, each with a short name used in links (`/explorer?source=glyphs&seed=3&step=12`):
characters generated on the spot by flmn_core.data.glyphs (no data, no internet: the default), Omniglot's 414
held-out test characters (the paper's split) and miniMNIST. The image pools are loaded once per process
and shared by every session (st.cache_resource), never changed.
"""

import streamlit as st

from flmn_core import DataError, load_mini_mnist, load_omniglot, split_indices
from flmn_core.data.glyphs import sample_glyph_pool
from flmn_core.data.sources import MNIST_FILES, MNIST_URL, OMNIGLOT_SETS, OMNIGLOT_URL, data_dir

GLYPHS, OMNIGLOT, MNIST = "glyphs", "omniglot", "mnist"
SOURCES = {GLYPHS: "Generated characters", OMNIGLOT: "Omniglot test characters", MNIST: "miniMNIST digits"}
GLYPH_CHARACTERS, GLYPH_DRAWINGS = 40, 10  # the generated pool: 40 new characters drawn 10 times each
MAX_SEED = 10**6
# The files each data set needs under the data folder, and where the official ones come from.
DATA_FILES = {OMNIGLOT: [(f"omniglot/{name}.zip", OMNIGLOT_URL.format(name=name)) for name in OMNIGLOT_SETS],
              MNIST: [(f"mnist/{name}", MNIST_URL.format(name=name)) for name in MNIST_FILES]}
# The README's command with the data folder that sits beside the project on its machines.
RUN_WITH_DATA = "FLMN_DATA_DIR=../shared/data .venv/bin/streamlit run app.py"


@st.cache_resource(show_spinner="Drawing new characters…", max_entries=4)
def glyph_pool(seed):
    """Generated characters: [40, 10, 20, 20]. Shared by all sessions, never changed."""
    return sample_glyph_pool(GLYPH_CHARACTERS, GLYPH_DRAWINGS, seed)


@st.cache_resource(show_spinner="Reading Omniglot (the first time takes about half a minute)…")
def omniglot_test_pool():
    """Omniglot's 414 test characters (the paper's split): [414, 20, 20, 20]. Never downloads: offline a
    download only fails, so the page says where to put the files instead."""
    return load_omniglot(download=False).images[split_indices("test")]


@st.cache_resource(show_spinner="Reading MNIST…")
def mnist_pool():
    """miniMNIST: [10, 20, 20, 20]."""
    return load_mini_mnist(download=False)


def load_pool(source, seed):
    """The image pool [characters, drawings, 20, 20] of a source; raises DataError when its files are
    missing (a failed load is not cached, so it is tried again on the next run)."""
    if source == GLYPHS:
        return glyph_pool(seed)
    return {OMNIGLOT: omniglot_test_pool, MNIST: mnist_pool}[source]()


def missing_data_md(source, why):
    """What to do when a data set's files are missing, in Markdown: which files, where from, and the two
    ways to give them to the app."""
    files = "\n".join(f"  - `{path}` ([official file]({url}))" for path, url in DATA_FILES[source])
    return (f"**{SOURCES[source]} need data that is not on this machine.** The app reads the data folder named by "
            f"`FLMN_DATA_DIR` (now `{data_dir()}`), which must hold:\n{files}\n\n"
            f"Either restart the app pointing at a folder that has them, for example the one beside the project:\n\n"
            f"```bash\n{RUN_WITH_DATA}\n```\n\n"
            f"or copy the files into `{data_dir()}` and press *Try again*. The generated characters need no data.\n\n"
            f"_Details: {why}_")


def pool_ui(source, seed):
    """The pool of a source, or None after saying how to give the app the missing data (and offering to
    look again once the files are in place)."""
    try:
        return load_pool(source, seed)
    except DataError as missing:
        st.info(missing_data_md(source, missing), icon=":material/folder_open:")
        st.button("Try again", key=f"retry-{source}", icon=":material/refresh:",
                  help="Look for the files again (after copying them into the data folder).")
        return None


def link_int(params, key, low, high, default):
    """An integer of a link's query parameters, clamped to low..high; the default when absent or not a
    whole number (a hand-edited link must never break the page)."""
    try:
        return min(max(int(params.get(key, default)), low), high)
    except (TypeError, ValueError):
        return default


def write_link(values):
    """Make the page's URL hold these query parameters ({name: value}), so that a reload or a copied link
    comes back to the same view. Only a change is sent to the browser."""
    wanted = {key: str(value) for key, value in values.items()}
    if st.query_params.to_dict() != wanted:
        st.query_params.from_dict(wanted)
