"""What the app's pages share: the frame every page sits in (frame), the memory panel (memory), where episodes
come from (sources) and how text a person or a file supplied is shown (markup). Streamlit lives here and in
app.py and app_pages/, never in flmn_core."""
