"""The app's front door: `streamlit run app.py`.

Draw characters, label each once and watch FLMN and MANN recognise the next drawing while their
memories fill up (Teach); replay any episode step by step with both memories side by side (Episode
explorer); the shipped checkpoints' accuracy beside the papers' (Results); the equations beside the code
(How it works). This file is the router and the frame every page shares: the checkpoints chosen in the
sidebar and the episode file.
"""

import streamlit as st

from app_shared import frame
from app_shared.markup import plain

st.set_page_config(page_title="FLMN: one-shot learning with memory", page_icon="✏️", layout="wide")
frame.stylesheet_ui()
st.logo(frame.LOGO, size="large")

pages = st.navigation([
    st.Page("app_pages/teach.py", title="Teach", icon=":material/draw:", default=True),
    st.Page("app_pages/play.py", title="Play the model", icon=":material/sports_esports:"),
    st.Page("app_pages/explorer.py", title="Episode explorer", icon=":material/grid_on:"),
    st.Page("app_pages/results.py", title="Results", icon=":material/table_chart:"),
    st.Page("app_pages/how_it_works.py", title="How it works", icon=":material/functions:"),
])

st.sidebar.markdown("**Models compared**")
models, errors = frame.load_models(frame.choose_checkpoints_ui())
st.session_state["models"] = models
for message in errors:
    st.error(plain(message))  # above every page; the pages go on with the models that did load
frame.episode_file_ui()

pages.run()
frame.freeze_long_lived_objects()
