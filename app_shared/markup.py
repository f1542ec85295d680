"""How text that a person typed or a file supplied is shown: as text, never as Markdown, HTML, a link or an
image. Every page passes such text (label names, file names) through `plain` before Streamlit's Markdown
sees it; HTML that the app builds itself escapes it with html.escape."""

import re

# Characters that make Markdown, Streamlit's directives (:red[...], :smile:) or LaTeX ($) act anywhere in a
# line. Those that act only at a line's start (-, +, =, 1.) are left alone: a name never starts a line here.
MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#!|~:$&^])")


def plain(text):
    """Text shown through Markdown (a button label, a caption) exactly as typed: every character that
    Markdown, Streamlit's directives (:red[...], :material/...:) or LaTeX ($) would act on is escaped, so a
    label name like ![i](http://host/x.png) or <a href=...> shows as those characters and fetches nothing."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", str(text))
