"""A save button whose file is made when it is clicked, after everything clicked before it.

Streamlit's download button carries a file made when the page was last drawn, at an address that lives
for about one run after the next: a click during the runs that follow a label click fetched either the
step before the one just labelled, or an address already gone (a cancelled download). This button asks
the server instead: the click is a trigger, handled in order after every earlier click (a label given
just before is in the file), and the file comes back with the page's next update and is saved by the
browser from there, with no address to expire.

    save_button_ui("teach-save", "Save episode", make_bytes, "flmn-episode.npz", disabled=False)
"""

import base64
import functools

import streamlit as st

# The button, and the browser's download of a file that the server sends back for the click that asked
# for it (each click has its own id; a file is saved once, whatever runs follow).
SAVE_JS = """
const states = new WeakMap();
export default function ({ data, parentElement, setTriggerValue }) {
  let state = states.get(parentElement);
  if (!state) {
    const button = parentElement.querySelector("button");
    state = { button, asked: null, saved: null };
    button.addEventListener("click", () => {
      state.asked = Math.random().toString(36).slice(2);
      setTriggerValue("save", state.asked);
    });
    states.set(parentElement, state);
  }
  state.button.querySelector(".flmn-save-label").textContent = data.label;
  state.button.title = data.help;
  state.button.disabled = data.disabled;
  if (data.file && data.request === state.asked && state.saved !== data.request) {
    state.saved = data.request;
    const bytes = Uint8Array.from(atob(data.file), c => c.charCodeAt(0));
    const url = URL.createObjectURL(new Blob([bytes], { type: "application/octet-stream" }));
    const link = document.createElement("a");
    link.href = url;
    link.download = data.name;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  }
}
"""
SAVE_HTML = ('<button type="button" class="flmn-save"><svg viewBox="0 0 24 24" width="18" height="18" fill="none" '
             'stroke="currentColor" stroke-width="2"><path d="M12 4v11"/><path d="M7 10l5 5 5-5"/><path d="M5 20h14"/>'
             '</svg><span class="flmn-save-label"></span></button>')
SAVE_CSS = """
.flmn-save { display: inline-flex; align-items: center; gap: 0.4rem; min-height: 2.5rem; padding: 0.25rem 0.75rem;
  font: inherit; font-size: 1rem; color: rgb(49, 51, 63); background: white; cursor: pointer;
  border: 1px solid rgba(49, 51, 63, 0.2); border-radius: 0.5rem; }
.flmn-save:hover { border-color: #ff4b4b; color: #ff4b4b; }
.flmn-save:disabled { color: rgba(49, 51, 63, 0.4); border-color: rgba(49, 51, 63, 0.1); cursor: not-allowed; }
"""
save_component = st.components.v2.component("flmn.save", html=SAVE_HTML, css=SAVE_CSS, js=SAVE_JS)


def ask_for_file(key):
    """Callback of a click: remember its id, so that this run sends the file made now."""
    asked = (st.session_state.get(key) or {}).get("save")
    if asked:
        st.session_state[f"{key}-asked"] = str(asked)


def save_button_ui(key, label, make_bytes, file_name, disabled=False, help=""):
    """A button saving the file make_bytes() returns, made when clicked (after every earlier click)."""
    asked = st.session_state.pop(f"{key}-asked", None)
    data = {"label": label, "help": help, "disabled": bool(disabled), "name": file_name, "request": asked,
            "file": base64.b64encode(make_bytes()).decode("ascii") if asked and not disabled else None}
    save_component(data=data, key=key, on_save_change=functools.partial(ask_for_file, key))
