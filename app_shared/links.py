"""The page's address: what a reload, Back and Forward, or a shared link need to show the same state.

Every page keeps its state in its own query (`/explorer?source=glyphs&seed=3&step=12`, `/?episode=<token>`),
with the checkpoints chosen in the sidebar (`flmn=flmn-conv&mann=mann-exp1`). The query is read once, when a
session starts on a page (a first visit, a reload, a link, or Back to a page the session has not shown), and
written after every run by `address_ui`.

Written by a small component of our own that replaces the browser's current history entry, not through
st.query_params: Streamlit pushes a new history entry at every change of st.query_params, so one click
that moved the explorer's step and its views added two or three entries, and Back stayed on the page.
Streamlit itself still pushes one entry when the page changes (the navigation); the component then puts
the page's own query on it, so each page visit is one entry with that page's own query.

An episode taught in this session is not in the query (too large): it is kept on the server under an
unguessable token for STASH_SIZE sessions, and the query holds the token (`episode=<token>`).
"""

import secrets
import threading
from collections import OrderedDict
from typing import NamedTuple
from urllib.parse import urlencode

import numpy as np
import streamlit as st

from flmn_core.interactive.episode import EpisodeError, InteractiveEpisode
from flmn_core.model.networks import MODELS

STASH_SIZE = 200  # session episodes kept for reloads, the most recent; a 50-step episode's file is ~20 KB
TOKEN = "episode"  # the query parameter holding the session's episode token
ADDRESS_KEY = "flmn-address"  # the component's key; assets/style.css hides it: it draws nothing
# Replace the query of the current history entry (never push one); the path is the page's, set by Streamlit.
ADDRESS_JS = """
export default function ({ data }) {
  const wanted = data.query ? "?" + data.query : "";
  if (window.location.search !== wanted) {
    window.history.replaceState(window.history.state, "", window.location.pathname + wanted + window.location.hash);
  }
}
"""
address_component = st.components.v2.component("flmn.address", html="<span></span>", js=ADDRESS_JS)


def query_string(values):
    """{name: value} -> 'name=value&...' with each value URL-encoded, in the given order."""
    return urlencode({key: str(value) for key, value in values.items()})


def address_ui(values):
    """Make this page's address hold these query parameters ({name: value}) and the checkpoints chosen, by
    replacing the query of the browser's current history entry. Once per run of the page (or of the
    fragment that changes them)."""
    chosen = {kind: st.session_state[f"checkpoint_{kind}"].name for kind in MODELS
              if st.session_state.get(f"checkpoint_{kind}") is not None}
    address_component(data={"query": query_string(values | chosen)}, key=ADDRESS_KEY)


def first_params():
    """The query parameters this session started with on this page, as a dict of strings."""
    return st.query_params.to_dict()


def link_int(params, key, low, high, default):
    """An integer of a link's query parameters, clamped to low..high; the default when absent or not a
    whole number (a hand-edited link must never break the page)."""
    try:
        return min(max(int(params.get(key, default)), low), high)
    except (TypeError, ValueError):
        return default


# ----------------------------------------------------------------------------------------------------
# This session's episode across reloads


class Kept(NamedTuple):
    """What a reload brings back of a session: its episode file, and the drawing predicted and not labelled
    yet, if any (its [20, 20] image, and the canvas's strokes as Fabric.js JSON when it was drawn)."""

    episode: bytes
    pending: np.ndarray | None = None
    strokes: dict | None = None


@st.cache_resource
def episode_stash():
    """Session episodes by link token, for reloads: (OrderedDict {token: Kept}, lock). Shared by all
    sessions of this process; a token is unguessable, so only its link reaches an episode."""
    return OrderedDict(), threading.Lock()


def episode_token():
    """This session's episode token (made on first use)."""
    return st.session_state.setdefault("episode_token", secrets.token_urlsafe(12))


def stash(episode, strokes=None):
    """Keep this session's episode (and its pending drawing, with its strokes) under its token, so that a
    reload of any page finds it again. The episode file is packed again only when its steps, labels or
    names changed: a stroke changes only the pending drawing."""
    # The images themselves, compared by identity (and kept alive by this, so that no id is reused).
    facts = (episode.classes, tuple(episode.class_names), tuple(episode.labels), tuple(episode.runs), tuple(episode.images))
    last = st.session_state.get("episode_stashed")
    same = last is not None and last[0][:4] == facts[:4] and len(last[0][4]) == len(facts[4]) and all(
        a is b for a, b in zip(last[0][4], facts[4]))
    packed = last[1] if same else episode.to_bytes()
    st.session_state["episode_stashed"] = (facts, packed)
    pending = None if episode.pending is None else episode.pending[0].numpy().copy()
    kept = Kept(packed, pending, strokes if pending is not None else None)
    store, lock = episode_stash()
    with lock:
        store[episode_token()] = kept
        store.move_to_end(episode_token())
        while len(store) > STASH_SIZE:
            store.popitem(last=False)


def restore(token):
    """After a reload: the stashed episode of this link token, made this session's -> (InteractiveEpisode,
    Kept) or None when the token is unknown (another server, or too old)."""
    store, lock = episode_stash()
    with lock:
        kept = store.get(token)
    if kept is None:
        return None
    try:
        episode = InteractiveEpisode.load(kept.episode)
    except EpisodeError:
        return None
    st.session_state["episode_token"] = token
    return episode, kept
