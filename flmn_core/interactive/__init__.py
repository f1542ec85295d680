"""What the app stands on, without Streamlit: an episode taught step by step, episode files, safe uploads,
memory surgery, label-shuffle replay, human play, what memory rows hold, the read view and the memory figures.

Imports the layers below it (model, data, training), never flmn_core.results, never streamlit.
"""
