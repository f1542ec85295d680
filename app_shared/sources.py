"""Where the Episode explorer and human mode get their characters, and the links that reproduce an episode.

Three sources, each with a short name used in links (`/explorer?source=glyphs&seed=3&step=12`):
characters generated on the spot by flmn_core.data.glyphs (no data, no internet: the default), Omniglot's 414
held-out test characters (the paper's split) and miniMNIST. The image pools are loaded once per process
and shared by every session (st.cache_resource), never changed.
"""

import streamlit as st
import torch

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
    """What to do when a data set's files are missing, in Markdown: which files, where from, and the ways to
    give them to the app."""
    files = "\n".join(f"  - `{path}` ([official file]({url}))" for path, url in DATA_FILES[source])
    return (f"**{SOURCES[source]} need data that is not on this machine.** The app reads the data folder named by "
            f"`FLMN_DATA_DIR` (now `{data_dir()}`), which must hold:\n{files}\n\n"
            f"Press *Download* to fetch the official files into that folder (online only), or restart the app "
            f"pointing at a folder that has them, for example the one beside the project:\n\n"
            f"```bash\n{RUN_WITH_DATA}\n```\n\n"
            f"or copy the files into `{data_dir()}` and press *Try again*. The generated characters need no data.\n\n"
            f"_Details: {why}_")


def download_data(source):
    """Callback of *Download*: fetch the official files of a source into the data folder with the project's
    own downloader (flmn_core.data.sources), then read them; say why when that fails (offline, say)."""
    loader = {OMNIGLOT: load_omniglot, MNIST: load_mini_mnist}[source]
    try:
        with st.spinner(f"Downloading the {SOURCES[source]} files into {data_dir()}…"):
            loader(download=True)
    except DataError as error:
        st.session_state[f"download-{source}-error"] = str(error)
    else:
        st.session_state.pop(f"download-{source}-error", None)


def pool_ui(source, seed):
    """The pool of a source, or None after saying how to give the app the missing data: download the
    official files (online), or look again once they are in place."""
    try:
        return load_pool(source, seed)
    except DataError as missing:
        st.info(missing_data_md(source, missing), icon=":material/folder_open:")
        if st.session_state.get(f"download-{source}-error"):
            st.error(f"The download failed: {st.session_state[f'download-{source}-error']}")
        with st.container(horizontal=True, gap="small"):
            st.button("Download", key=f"download-{source}", icon=":material/download:", on_click=download_data,
                      args=(source,), help=f"Fetch the official files into {data_dir()} (needs the internet).")
            st.button("Try again", key=f"retry-{source}", icon=":material/refresh:",
                      help="Look for the files again (after copying them into the data folder).")
        return None


def character_to_copy(classes, seed, turn):
    """A character for the Teach page to copy at a turn: one drawing of one of `classes` characters, each
    going with one label (character c with label c), in an order that shows each once, then any again ->
    (image [20, 20], label, where it comes from). Omniglot's held-out test characters when their files are
    here, else generated ones (never downloaded from here: a first visit must not wait for it)."""
    try:
        pool, origin = load_pool(OMNIGLOT, 0), "A held-out Omniglot character (the drawers' task was the same)."
    except DataError:
        pool, origin = glyph_pool(seed), "A generated character (Omniglot's are shown when its files are here)."
    generator = torch.Generator().manual_seed(int(seed))
    characters = torch.randperm(len(pool), generator=generator)[:classes]
    first = torch.randperm(classes, generator=generator)
    later = torch.randint(0, classes, (max(0, turn - classes + 1),), generator=generator)
    label = int(first[turn]) if turn < classes else int(later[turn - classes])
    drawing = int(torch.randint(0, pool.shape[1], (turn + 1,), generator=generator)[turn])
    return pool[characters[label], drawing], label, origin
