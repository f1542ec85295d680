"""The report: tables from result files (or "not evaluated"), retrieval, the targets, figures from logs,
README rewritten in place; and the Markdown helpers every table uses."""

import json
import re

import pytest

from flmn_core.model import zoo
from flmn_core.results import markdown, paper, report, targets
from flmn_core.training import evaluate


def write_result(root, name, dataset, accuracy, ci95, episodes=10000, split=None, retrieval=None):
    path = root / "results" / f"{name}-{dataset}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    result = {"accuracy": accuracy, "ci95": ci95, "episodes": episodes, "dataset": dataset,
              "split": split or report.DATASET_SPLIT[dataset], "loss": 0.5, "seed": 0}
    if retrieval is not None:
        result["retrieval"] = retrieval
    path.write_text(json.dumps(result))
    return path


def row_of(table, name):
    """The Markdown row of a checkpoint, as its cells."""
    line = next(line for line in table.splitlines() if f"(`{name}`)" in line)
    return [cell.strip() for cell in line.strip("|").split("|")]


def target_row(table, name, data):
    line = next(line for line in table.splitlines() if f"| `{name}` | {data} |" in line)
    return [cell.strip() for cell in line.strip("|").split("|")]


ACCURACY = [0.3312, 0.8801, 0.9102, 0.9249, 0.9401, 0.95, 0.955, 0.96, 0.962, 0.9655]
CI95 = [0.0091, 0.0064, 0.0051, 0.004, 0.0038, 0.0035, 0.0033, 0.0031, 0.003, 0.0029]
RETRIEVAL = {"top_hit": 0.8512, "top_hit_ci95": 0.0031, "mass": 0.4567, "mass_ci95": 0.0042,
             "focus": 0.61, "focus_ci95": 0.002}


def test_table1_formats_our_rows_beside_the_published_ones(tmp_path):
    write_result(tmp_path, "flmn-exp1", "omniglot", ACCURACY, CI95)
    table = report.table1_markdown(tmp_path)
    assert row_of(table, "flmn-exp1") == ["FLMN, Exp. I (`flmn-exp1`)", "this project, 10,000 episodes",
                                          "33.1 ± 0.9", "88.0 ± 0.6", "91.0 ± 0.5", "92.5 ± 0.4", "94.0 ± 0.4",
                                          "96.5 ± 0.3"]
    assert row_of(table, "mann-exp1")[1:] == ["not evaluated"] + ["–"] * 6
    assert "| FLMN, Exp. I | Mureja et al. 2017, Table 1 | 31.1 | 85.6 | 88.7 |" in table
    assert "| MANN (LRUA), 4 read heads | Santoro et al. 2016, Table 1 | 36.4 | 82.8 | 91.0 |" in table
    assert table.splitlines()[0] == "| model | source | 1st | 2nd | 3rd | 4th | 5th | 10th |"
    published = [line for line in table.splitlines()[2:] if "this project" not in line and "not evaluated" not in line]
    assert len(published) == len(paper.published("omniglot", 5))  # the published rows of the dataset, each once


def test_table2_reads_the_mnist_results(tmp_path):
    write_result(tmp_path, "flmn-exp2", "mnist", [0.305, 0.79, 0.85, 0.87, 0.88, 0.89, 0.9, 0.9, 0.9, 0.91], [0.01] * 10)
    table = report.table2_markdown(tmp_path)
    assert row_of(table, "flmn-exp2")[2:4] == ["30.5 ± 1.0", "79.0 ± 1.0"]
    assert row_of(table, "flmn-exp1")[1] == "not evaluated"
    assert "| FLMN | Mureja et al. 2017, Table 2 | 28.5 | 67.6 | – | – | – | 80.5 |" in table
    assert "Santoro" not in table


def test_no_results_at_all_gives_not_evaluated_rows(tmp_path):
    assert report.table1_markdown(tmp_path).count("not evaluated") == len(zoo.CHECKPOINTS)
    assert report.retrieval_markdown(tmp_path).count("not evaluated") == len(zoo.CHECKPOINTS) * 2 * len(zoo.DATASETS)
    assert report.targets_markdown(tmp_path).count("not evaluated") == sum(len(t.checkpoints) for t in targets.TARGETS)


def test_unusable_result_files_are_named_in_the_row(tmp_path):
    write_result(tmp_path, "flmn-exp1", "omniglot", ACCURACY, CI95, split="validation")
    (tmp_path / "results" / "mann-exp1-omniglot.json").write_text("{not json")
    write_result(tmp_path, "flmn-exp2", "omniglot", ACCURACY, CI95, retrieval={"top_hit": "high"})
    table = report.table1_markdown(tmp_path)
    assert "unreadable result" in row_of(table, "flmn-exp1")[1] and "validation" in row_of(table, "flmn-exp1")[1]
    assert "unreadable result" in row_of(table, "mann-exp1")[1]
    assert "unreadable result" in row_of(table, "flmn-exp2")[1] and "flmn-exp2-omniglot.json" in row_of(table, "flmn-exp2")[1]
    with pytest.raises(report.ReportError, match="expected omniglot"):
        report.load_result("flmn-exp1", "omniglot", tmp_path)


def test_missing_instances_print_as_not_available(tmp_path):
    write_result(tmp_path, "flmn-exp1", "omniglot", [0.3, float("nan")] + ACCURACY[2:], [0.01, float("nan")] + CI95[2:])
    assert row_of(report.table1_markdown(tmp_path), "flmn-exp1")[2:4] == ["30.0 ± 1.0", "n/a"]


def test_retrieval_shows_each_dataset_or_why_not(tmp_path):
    write_result(tmp_path, "flmn-exp1", "omniglot", ACCURACY, CI95, retrieval=RETRIEVAL)
    write_result(tmp_path, "flmn-exp1", "mnist", ACCURACY, CI95)  # written before retrieval was measured
    table = report.retrieval_markdown(tmp_path)
    assert table.splitlines()[0] == ("| model | Omniglot: most-read row holds the class (%) | Omniglot: read mass on "
                                     "the class's rows | miniMNIST: most-read row holds the class (%) | miniMNIST: "
                                     "read mass on the class's rows | miniMNIST, normalised: most-read row holds "
                                     "the class (%) | miniMNIST, normalised: read mass on the class's rows |")
    assert row_of(table, "flmn-exp1")[1:] == ["85.1 ± 0.3", "0.457 ± 0.004", "not measured", "not measured",
                                              "not evaluated", "not evaluated"]
    assert row_of(table, "mann-exp1")[1:] == ["not evaluated"] * 6
    assert "85.1 ± 0.3" in report.results_markdown(tmp_path)


def test_targets_say_reached_or_not(tmp_path):
    write_result(tmp_path, "flmn-exp1", "omniglot", ACCURACY, CI95, retrieval=RETRIEVAL)
    table = report.targets_markdown(tmp_path)
    cells = target_row(table, "flmn-exp1", "Omniglot")
    goal = next(t for t in targets.TARGETS if t.checkpoints == ("flmn-exp1",)).accuracy
    assert cells[3:] == [f"33.12 ≥ {goal[1]:g}", f"88.01 ≥ {goal[2]:g}", f"91.02 ≥ {goal[3]:g}",
                         f"96.55 ≥ {goal[10]:g}", "85.12", "0.4567"]  # its retrieval is reported, no goal
    write_result(tmp_path, "flmn-exp1", "omniglot", [0.3109] + ACCURACY[1:], CI95)
    cells = target_row(report.targets_markdown(tmp_path), "flmn-exp1", "Omniglot")
    assert cells[3] == "31.09 < 31.1" and cells[-2:] == ["not measured", "not measured"]


def test_retrieval_goals_are_compared_too(tmp_path):
    write_result(tmp_path, "flmn-retrieve", "omniglot", ACCURACY, CI95, retrieval=RETRIEVAL)
    cells = target_row(report.targets_markdown(tmp_path), "flmn-retrieve", "Omniglot")
    assert cells[-2:] == ["85.12 ≥ 80", "0.4567 < 0.5"]
    assert cells[3] == "33.12 < 36"


def test_the_targets_are_defined_once_and_name_what_exists():
    names = {c.name for c in zoo.CHECKPOINTS}
    for target in targets.TARGETS:
        assert set(target.checkpoints) <= names and target.dataset in zoo.DATASETS
        assert set(target.accuracy) <= set(targets.TARGET_INSTANCES) and target.accuracy
        assert set(target.retrieval) <= set(report.RETRIEVAL_COLUMNS) <= set(evaluate.RETRIEVAL_MEASURES)
    # Reproducing the paper means reaching its printed row, read from flmn_core.results.paper, not typed twice.
    paper_flmn = next(r for r in paper.TABLE1 if r.model == "FLMN" and r.experiment == "I")
    reproduce = next(t for t in targets.TARGETS if t.checkpoints == ("flmn-exp1",))
    assert reproduce.accuracy == {k: paper_flmn.accuracy[k] for k in targets.TARGET_INSTANCES if k in paper_flmn.accuracy}


def test_the_results_section_names_no_issue(tmp_path):
    write_result(tmp_path, "flmn-exp1", "omniglot", ACCURACY, CI95, retrieval=RETRIEVAL)
    assert not re.search(r"issue", report.results_markdown(tmp_path), re.IGNORECASE)


def write_log(root, name, lines):
    path = root / "logs" / f"{name}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))


RECORD = {"kind": "train", "episode": 100, "loss": 1.2, "accuracy": [0.2] * 10}


def test_logs_are_read_without_a_truncated_last_line(tmp_path):
    write_log(tmp_path, "flmn-exp1", [json.dumps(RECORD), '{"kind": "tra'])
    assert report.load_log("flmn-exp1", tmp_path) == [RECORD]
    assert report.load_log("mann-exp1", tmp_path) == []  # no log: nothing to draw
    assert report.load_logs(tmp_path) == {"flmn-exp1": [RECORD]}


def test_figures_draw_the_logs_of_each_experiment(tmp_path):
    write_log(tmp_path, "flmn-exp1", [json.dumps(RECORD)])
    write_log(tmp_path, "mann-exp2", [json.dumps({**RECORD, "episode": 200})])
    figs = report.figures(tmp_path)
    assert set(figs) == {"figure3-accuracy-exp1", "figure4-accuracy-exp2", "figure5-loss"}
    assert {t.name for t in figs["figure3-accuracy-exp1"].data} == {"flmn-exp1"}
    assert {t.name for t in figs["figure4-accuracy-exp2"].data} == {"mann-exp2"}
    assert [t.name for t in figs["figure5-loss"].data] == ["flmn-exp1 (train)", "mann-exp2 (train)"]


README = ("# FLMN\r\n\r\nIntro with ümlauts and a table:\n| a | b |\n\n"
          f"{report.README_START}\nold numbers 12.3\n{report.README_END}\n\n## After\r\ntrailing text\n\n")


def test_readme_section_is_rewritten_and_the_rest_kept_byte_for_byte(tmp_path):
    write_result(tmp_path, "flmn-exp1", "omniglot", ACCURACY, CI95)
    readme = tmp_path / "README.md"
    readme.write_bytes(README.encode("utf-8"))
    report.rewrite_section(readme, report.results_markdown(tmp_path))
    text = readme.read_bytes().decode("utf-8")
    head, middle_and_tail = text.split(report.README_START)
    middle, tail = middle_and_tail.split(report.README_END)
    assert head == README.split(report.README_START)[0]
    assert tail == README.split(report.README_END)[1]
    assert "33.1 ± 0.9" in middle and "old numbers" not in middle
    before = readme.read_bytes()
    report.rewrite_section(readme, report.results_markdown(tmp_path))
    assert readme.read_bytes() == before  # regenerating from the same files changes nothing


@pytest.mark.parametrize("text", ["no markers", f"{report.README_END}\n{report.README_START}",
                                  f"{report.README_START}\n{report.README_START}\n{report.README_END}"])
def test_readme_without_proper_markers_is_refused_and_left_alone(tmp_path, text):
    readme = tmp_path / "README.md"
    readme.write_text(text)
    with pytest.raises(report.ReportError):
        report.rewrite_section(readme, "new")
    assert readme.read_text() == text


def test_command_line_writes_markdown_readme_and_figures(tmp_path, capsys):
    root = tmp_path / "checkpoints"
    write_result(root, "mann-exp1", "omniglot", ACCURACY, CI95)
    write_log(root, "mann-exp1", [json.dumps(RECORD)])
    readme = tmp_path / "README.md"
    readme.write_text(README)
    results = tmp_path / "results-doc.md"
    results.write_text(README)
    report.main(["--checkpoint-dir", str(root), "--out-md", str(tmp_path / "results.md"), "--readme", str(readme),
                 "--results", str(results), "--figures", str(tmp_path / "figures")])
    assert "33.1 ± 0.9" in (tmp_path / "results.md").read_text()
    assert "33.1 ± 0.9" in results.read_text()
    assert "| 33.1 |" in readme.read_text() and "± 0.9" not in readme.read_text()  # in short
    for name in ("figure3-accuracy-exp1", "figure4-accuracy-exp2", "figure5-loss"):
        assert "mann-exp1" in (tmp_path / "figures" / f"{name}.html").read_text() or name == "figure4-accuracy-exp2"
    assert capsys.readouterr().out == ""  # with a file to write, nothing is printed
    with pytest.raises(SystemExit, match="not a folder"):
        report.main(["--checkpoint-dir", str(tmp_path / "missing")])


def test_legend_links_the_model_cards_that_exist(tmp_path):
    (tmp_path / "flmn-exp1.md").write_text("a card")
    lines = report.checkpoint_legend(tmp_path, link_cards=True).splitlines()
    line = next(line for line in lines if line.startswith("- `flmn-exp1`"))
    assert line.endswith(f"([model card]({zoo.FOLDER}/flmn-exp1.md))")
    assert sum("model card" in line for line in lines) == 1  # the others have no card
    assert "model card" not in report.checkpoint_legend(tmp_path)  # the app's legend links nothing
    assert "([model card](checkpoints/flmn-exp1.md))" in report.summary_markdown(tmp_path)  # README, at the root
    assert "([model card](../checkpoints/flmn-exp1.md))" in report.results_markdown(tmp_path)  # docs/results.md


def test_an_unreadable_log_is_named(tmp_path):
    (tmp_path / "logs" / "flmn-exp1.jsonl").mkdir(parents=True)  # a folder where the log should be
    with pytest.raises(report.ReportError, match="flmn-exp1.jsonl: cannot read"):
        report.load_log("flmn-exp1", tmp_path)


# ---- Markdown -----------------------------------------------------------------------------------------

def test_ordinals_read_as_english():
    assert [markdown.ordinal(k) for k in (1, 2, 3, 4, 10, 11, 12, 13, 21, 22, 23, 101, 111, 112)] == [
        "1st", "2nd", "3rd", "4th", "10th", "11th", "12th", "13th", "21st", "22nd", "23rd", "101st", "111th", "112th"]


def test_series_read_as_english():
    assert [markdown.series(items) for items in (["a"], ["a", "b"], ["a", "b", "c"])] == ["a", "a and b", "a, b and c"]


def test_tables_and_numbers_are_written_one_way():
    assert markdown.table(["a", "b"], [["1", "x | y"]]) == "| a | b |\n|---|---|\n| 1 | x \\| y |"
    assert markdown.percent(0.8561, 0.0031) == "85.6 ± 0.3" and markdown.percent(0.8561) == "85.6"
    assert markdown.percent(float("nan"), 0.1) == "n/a" and markdown.percent(None) == "n/a"
    assert markdown.number(0.05612, 0.00123) == "0.056 ± 0.001" and markdown.number(0.5, float("nan")) == "0.500"
