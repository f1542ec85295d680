"""The Results page and flmn_core.results.paper: every cell of the FLMN paper's Tables 1 and 2 is recorded (checked
against the paper's text in ../shared/paper), and published numbers are drawn only where the papers give
them, as points, never as lines through instances they do not report."""

import json
import os
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from flmn_core.model import zoo
from flmn_core.results import paper

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT.parent / "shared" / "paper" / "mureja-2017-flmn.md"
ORDINAL = {"1st": 1, "2nd": 2, "3rd": 3, "4th": 4, "5th": 5, "10th": 10}


def paper_table(text, caption):
    """The rows of a table of the paper's text after its caption -> {row name: {instance: percent}}."""
    lines = text.split(caption, 1)[1].splitlines()
    header = next(line for line in lines if line.startswith("Model"))
    # "$2^{\mathrm{nd}}$" -> "2nd"; the empty cells after the last column are dropped.
    names = [re.sub(r"\\mathrm|\\rm|[^0-9a-z]", "", cell) for cell in header.split("\t")[1:]]
    instances = [ORDINAL[name] for name in names if name]
    rows = {}
    for line in lines[lines.index(header) + 1:]:
        cells = line.split("\t")
        if len(cells) < 2 or not re.match(r"\d", re.sub(r"<[^>]+>", "", cells[1])):
            if rows:
                break
            continue
        values = [float(re.sub(r"<[^>]+>|\s", "", c)) for c in cells[1:] if c.strip()]
        rows[cells[0].strip()] = dict(zip(instances, values))
    return rows


@pytest.fixture(scope="module")
def paper_text():
    if not PAPER.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{PAPER} is missing: CI lays ../shared beside the repository", pytrace=False)
        pytest.skip(f"{PAPER} is missing (the paper's text lives in ../shared/paper)")
    return PAPER.read_text()


def test_paper_py_holds_every_cell_of_the_flmn_papers_table_1(paper_text):
    table = paper_table(paper_text, "Table 1: Test-set classification accuracies")
    assert len(table) == 5 and all(len(row) == 6 for row in table.values()), table
    recorded = {f"{r.model} (Experiment {r.experiment})": r.accuracy for r in paper.TABLE1}
    recorded["MANN (Santoro et al. 2016)"] = paper.SANTORO.accuracy
    assert recorded == table


def test_paper_py_holds_every_cell_of_the_flmn_papers_table_2(paper_text):
    table = paper_table(paper_text, "Table 2: Test-set classification accuracies")
    assert {r.model: r.accuracy for r in paper.TABLE2} == table == {
        "MANN": {1: 14.6, 2: 37.3, 10: 52.0}, "FLMN": {1: 28.5, 2: 67.6, 10: 80.5}}


def test_santoros_human_row_is_recorded():
    assert paper.HUMAN.accuracy == {1: 34.5, 2: 57.3, 3: 70.1, 4: 71.8, 5: 81.4, 10: 92.4}
    assert paper.HUMAN.source == "Santoro et al. 2016, Table 1"


def test_the_results_page_draws_published_numbers_as_points_at_reported_instances_only():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("app_pages/results.py").run()
    assert not at.exception, at.exception
    charts = [spec for spec in (json.loads(chart.proto.spec) for chart in at.get("plotly_chart"))
              if spec["layout"]["title"]["text"].startswith("Accuracy by instance")]
    assert len(charts) == 4  # Omniglot Experiment I and II, zero-shot miniMNIST as is and normalised

    rows = (*paper.TABLE1, *paper.TABLE2, paper.SANTORO, paper.HUMAN)
    published = {f"{r.model}{f', Exp. {r.experiment}' if r.experiment else ''} ({r.source})": r for r in rows}
    seen = []
    for spec in charts:
        for trace in spec["data"]:
            row = published.get(trace["name"])
            if row is None:  # one of our checkpoints: a line through all ten instances
                assert trace["name"] in {c.name for c in zoo.CHECKPOINTS}, trace["name"]
                assert trace["mode"] == "lines+markers" and trace["x"] == list(range(1, 11))
                continue
            seen.append(trace["name"])
            assert trace["mode"] == "markers", trace["name"]
            assert trace["x"] == sorted(row.accuracy)  # nothing drawn where the paper reports nothing
    # Each Omniglot plot: its experiment's FLMN and MANN, Santoro et al.'s MANN and humans; each miniMNIST: Table 2.
    assert len(seen) == 2 * (2 + 2) + 2 * 2 and set(seen) == set(published)
