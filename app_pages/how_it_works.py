"""How it works: the task as a picture, then the paper's equations, each beside the flmn_core function
that computes it (its docstring and source, read from the code itself so they cannot drift apart)."""

import inspect

import streamlit as st

from flmn_core.data import episodes
from flmn_core.interactive import protocol
from flmn_core.model import addressing, retrieval
from flmn_core.model import networks as models
from flmn_core.model.networks import FLMN, MANN, MemoryNetwork

# (title, LaTeX as the FLMN paper numbers it, the function that computes it). A formula of two parts is set
# on two lines: side by side they are wider than the formula's column at 1440 px. The symbols: k_t key,
# M_t memory (M^f feature, M^l label), w^r read, w^u usage, w^lu least used, w^w write weights, a_t add
# vectors, alpha the write gate, gamma the usage decay.
EQUATIONS = (
    ("Eq. (1) Cosine similarity of the key with each memory row",
     r"K\big(k_t, M_t(i)\big) = \frac{k_t \cdot M_t(i)}{\lVert k_t \rVert \, \lVert M_t(i) \rVert}",
     addressing.cosine_similarity),
    ("Eq. (2) Read weights: a softmax over the rows",
     r"w^r_t(i) = \frac{\exp K\big(k_t, M_t(i)\big)}{\sum_j \exp K\big(k_t, M_t(j)\big)}",
     addressing.read_weights),
    ("Eq. (3) The read vector (FLMN reads the label memory with weights from the feature memory)",
     r"r_t = \sum_i w^r_t(i)\, M^l_t(i)", addressing.read_memory),
    ("Eq. (4) Usage: decayed, plus what was read and written",
     r"w^u_t = \gamma\, w^u_{t-1} + w^r_t + w^w_t", addressing.update_usage),
    ("Eq. (5) Least-used rows",
     r"w^{lu}_t(i) = \begin{cases} 0 & \text{if } w^u_t(i) > m(w^u_t, n) \\ 1 & \text{otherwise} \end{cases}",
     addressing.least_used),
    ("Eq. (6) Write weights: where it last read, or the least-used row",
     r"w^{wf}_t = \sigma(\alpha)\, w^r_{t-1} + \big(1 - \sigma(\alpha)\big)\, w^{lu}_{t-1}", addressing.write_weights),
    ("Eq. (7) Clear the least-used row before writing",
     r"M^f_t(i) \leftarrow 0 \quad \text{if } w^{lu}_{t-1}(i) = 1", addressing.clear_rows),
    ("Eqs. (8) and (10) Additive writes to the feature and label memories",
     r"\begin{aligned} M^f_t(i) &= M^f_{t-1}(i) + w^{wf}_t(i)\, a^f_t \\ M^l_t(i) &= M^l_{t-1}(i) + w^{wl}_t(i)\, a^l_t "
     r"\end{aligned}",
     addressing.write_memory),
    ("Eq. (9) The label is written one step later, where the feature was written",
     r"w^{wl}_t = w^{wf}_{t-1}", FLMN.memory_step),
)

# The retrieving FLMN (flmn-retrieve): what it changes, each beside the code. r counts rows that hold something.
VARIANTS = (
    ("Key strength: a learned beta_t >= 1 sharpens the softmax of Eq. (2)",
     r"\begin{gathered} w^r_t(i) = \frac{\exp \beta_t K(i)}{\sum_j \exp \beta_t K(j)} \\ "
     r"\beta_t = 1 + \log(1 + e^{\hat\beta_t}) \end{gathered}",
     MemoryNetwork.read_weights),
    ("Empty rows take no read, and a read may land on nothing (the null row, similarity a learned threshold theta)",
     r"w^r_t(i) = \frac{[M^f(i) \neq 0] \exp \beta_t K(i)}{e^{\beta_t \theta} + \sum_j [M^f(j) \neq 0] \exp \beta_t K(j)}",
     addressing.read_weights_with_null),
    ("Reading before the write: the key is compared with the rows of earlier drawings only",
     r"w^r_t = \mathrm{softmax}\big(\beta_t K(k_t, M^f_{t-1} \text{ after Eq. (7)})\big)", FLMN.memory_step),
    ("The retrieval loss: read weight belongs on the rows that hold earlier drawings of the class "
     "(a new class: on nothing)",
     r"\mathcal{L} = \mathrm{CE}(\hat y_t, y_t) - \lambda \log \sum_i w^r_t(i)\, s_t(i, y_t)",
     retrieval.retrieval_loss),
)

# flmn-conv: the retrieving FLMN with a small convolutional network between the image and the controller.
ENCODER = ("A convolutional encoder: the controller sees features that change little when a drawing moves",
           r"\begin{gathered} \text{input}_t = \big(\mathrm{LN}(\mathrm{flatten}(B_3 B_2 B_1 x_t)),\ y_{t-1}\big) \\ "
           r"B = \mathrm{maxpool}\,\mathrm{ReLU}\,\mathrm{GN}\,\mathrm{conv}_{3 \times 3} \end{gathered}",
           models.conv_encoder)

PROTOCOL = (
    ("The input offset: step t sees x_t with the label of step t-1",
     r"\text{input}_t = \big(x_t,\ y_{t-1}\big), \qquad y_{-1} = \mathbf{0}", episodes.offset_labels),
)


def equation_ui(title, latex, function):
    """One equation: the formula on the left, the function's docstring and source on the right."""
    st.markdown(f"#### {title}")
    formula, code = st.columns([2, 3])
    formula.latex(latex)
    with code:
        st.markdown(f"`flmn_core.{function.__module__.split('.')[-1]}.{function.__qualname__}`")
        st.caption(inspect.getdoc(function) or "")
        with st.expander("Source"):
            st.code(inspect.getsource(function), language="python")


st.title("How it works")
st.markdown(
    "Both models read an episode one step at a time: an LSTM controller sees the image and the previous "
    "step's label, writes to an external memory and reads from it, and a classifier predicts the label. "
    "**MANN** (Santoro et al. 2016) keeps what it writes and what it reads in one memory. **FLMN** "
    "(Mureja et al. 2017) splits it: a *feature memory* that the key is compared with, and a *label "
    "memory* whose rows hold the labels that arrived one step after the features.")
st.plotly_chart(protocol.protocol_figure(), key="protocol", config={"displayModeBar": False})
for title, latex, function in PROTOCOL:
    equation_ui(title, latex, function)

st.header("The memory equations")
st.markdown("Numbered as in the FLMN paper; MANN uses Eqs. (1)–(8) on its single memory, so that its read "
            "(3) returns memory rows instead of label rows.")
for title, latex, function in EQUATIONS:
    equation_ui(title, latex, function)

st.header("Beyond the paper: an FLMN whose read retrieves")
st.markdown("The paper's read is a softmax over cosines in [-1, 1]: it can put at most e² / (e² + 63) ≈ 0.10 "
            "of its weight on one of 64 rows, so the paper-faithful models read a blur of every row. The "
            "`flmn-retrieve` checkpoint adds four things (each an option of `FLMNConfig` or `TrainConfig`; its "
            "model card gives the runs that chose them), and its reads land on the row of an earlier drawing of "
            "the class; s_t(i, y) is the share of row i written by earlier drawings of class y.")
for title, latex, function in VARIANTS:
    equation_ui(title, latex, function)
st.markdown("The `flmn-conv` checkpoint, the app's default FLMN, is `flmn-retrieve` with one more change: the "
            "controller sees the features of a small convolutional network instead of the image's 400 pixels "
            "(`--encoder conv`; B₁ has no pooling but a stride of 2).")
equation_ui(*ENCODER)

st.header("The two models")
for model in (FLMN, MANN):
    st.markdown(f"#### `flmn_core.model.networks.{model.__name__}`")
    st.code(inspect.getdoc(model), language=None, wrap_lines=True)  # verbatim: its equations are laid out in columns
    with st.expander("Source of one memory step"):
        st.code(inspect.getsource(model.memory_step), language="python")
