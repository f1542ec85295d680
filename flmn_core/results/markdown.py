"""How the project writes numbers and tables in Markdown, defined once: README's results, the model cards
and the app's tables all use these, so a table or a "2nd" looks the same everywhere."""

import math

MISSING = "–"  # a cell with no number: the source gives none, or it was not measured or evaluated


def table(header, rows):
    """A Markdown table from a header and rows of cells (strings); a "|" inside a cell is escaped."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def ordinal(k):
    """1 -> '1st', 2 -> '2nd', 3 -> '3rd', 4 -> '4th', 11 -> '11th', 22 -> '22nd'."""
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def percent(fraction, ci=None):
    """0.8561, 0.0031 -> "85.6 ± 0.3"; 0.8561 -> "85.6"; None or NaN -> "n/a"."""
    return number(fraction, ci, scale=100, digits=1)


def number(value, ci=None, scale=1, digits=3):
    """value (± ci), both times scale, to `digits` decimals: 0.0561, 0.0012 -> "0.056 ± 0.001"; None or
    NaN -> "n/a"; an interval that is None or NaN is left out."""
    if value is None or math.isnan(value):
        return "n/a"
    if ci is None or math.isnan(ci):
        return f"{scale * value:.{digits}f}"
    return f"{scale * value:.{digits}f} ± {scale * ci:.{digits}f}"


def series(items):
    """["a"] -> "a"; ["a", "b", "c"] -> "a, b and c"."""
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
