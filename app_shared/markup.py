"""How text that a person typed or a file supplied is shown: as text, never as Markdown, HTML, a link or an
image. Every page passes such text (label names, file names, messages that quote them) through `plain`
before Streamlit's Markdown sees it; HTML that the app builds itself escapes it with html.escape."""

import re

# Characters that make Markdown, Streamlit's directives (:red[...], :smile:) or LaTeX ($) act anywhere in a
# line. Those that act only at a line's start (-, +, =, 1.) are left alone: supplied text never starts a line,
# as its own line breaks become spaces (LINE_BREAKS).
MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#!|~:$&^])")
LINE_BREAKS = re.compile(r"[\r\n\v\f\x85\u2028\u2029]+")
# Streamlit's Markdown turns bare addresses (http://..., https://..., www.x, name@host.org) into links after
# it has resolved the escapes, so no backslash stops it. An invisible word joiner where each such address
# starts to match (before "://", between "www" and ".", before "@") does: the text reads the same.
AUTOLINK_STARTS = re.compile(r"(?=://)|(?<=www)(?=\.)|(?=@)", re.IGNORECASE)
WORD_JOINER = "\u2060"


def plain(text):
    """Text shown through Markdown (a button label, a caption, a message) exactly as typed: every character
    that Markdown, Streamlit's directives (:red[...], :material/...:) or LaTeX ($) would act on is escaped,
    bare web and mail addresses are kept from becoming links, and line breaks become spaces, so a label name
    like ![i](http://host/x.png), <a href=...> or www.example.org shows as those characters and fetches
    nothing."""
    text = LINE_BREAKS.sub(" ", str(text))  # a line of its own would start a list, a heading, a table...
    return MARKDOWN_SPECIAL.sub(r"\\\1", AUTOLINK_STARTS.sub(WORD_JOINER, text))


def label_md(episode, label):
    """A label of an episode as Markdown-safe text: '3' or '3 (Alpha)', its name shown as typed."""
    return plain(episode.label_text(label))
