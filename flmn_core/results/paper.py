"""The published numbers this project compares itself with, in one place.

Per-instance accuracy in percent, keyed by instance number (1 = the first time a class is shown in an
episode). Only the cells the sources report are stored; a missing key means "not reported here", never 0.
Everything is 5 classes x 10 samples per episode (T = 50) on Omniglot's held-out characters, except
Table 2 (zero-shot miniMNIST: trained on Omniglot, tested on MNIST digits) and the 15-class rows.
"""

from dataclasses import dataclass

# The instances the papers' tables report, in their column order.
TABLE_INSTANCES = (1, 2, 3, 4, 5, 10)


@dataclass(frozen=True)
class Published:
    """One row of a published table.

    model: the row's name as the source writes it; experiment: "I" (no augmentation), "II" (rotation
    and translation) or "" when the source has no such split; source: where the numbers are printed;
    accuracy: instance number -> accuracy in percent.
    """

    model: str
    experiment: str
    source: str
    accuracy: dict

    def series(self):
        """The row as a results.figures.instance_accuracy_figure series: fractions at the reported instances only,
        marked published (drawn as points: the source gives nothing between them)."""
        instances = sorted(self.accuracy)
        return {"instances": instances, "accuracy": [self.accuracy[k] / 100 for k in instances], "published": True}


# The FLMN paper's Table 1 (Omniglot), every cell. The MANN rows are the FLMN paper's own baseline runs (one
# read head, one N x M memory), not Santoro et al.'s numbers; its first row reprints Santoro et al.'s MANN,
# kept below as SANTORO under its own source.
TABLE1 = (
    Published("FLMN", "I", "Mureja et al. 2017, Table 1", {1: 31.1, 2: 85.6, 3: 88.7, 4: 89.5, 5: 91.0, 10: 94.1}),
    Published("MANN", "I", "Mureja et al. 2017, Table 1", {1: 21.6, 2: 66.7, 3: 74.0, 4: 76.0, 5: 76.3, 10: 78.1}),
    Published("FLMN", "II", "Mureja et al. 2017, Table 1", {1: 33.9, 2: 86.5, 3: 89.1, 4: 89.7, 5: 91.1, 10: 94.4}),
    Published("MANN", "II", "Mureja et al. 2017, Table 1", {1: 22.2, 2: 65.5, 3: 72.0, 4: 74.5, 5: 76.4, 10: 77.2}),
)

# The FLMN paper's Table 2: trained on Omniglot, tested zero-shot on miniMNIST. The paper reports only the
# 1st, 2nd and 10th instances here.
TABLE2 = (
    Published("FLMN", "", "Mureja et al. 2017, Table 2", {1: 28.5, 2: 67.6, 10: 80.5}),
    Published("MANN", "", "Mureja et al. 2017, Table 2", {1: 14.6, 2: 37.3, 10: 52.0}),
)

# Santoro et al. 2016, Table 1, 5 classes: MANN with LRU access (LSTM controller, 4 read heads).
SANTORO = Published("MANN (LRUA), 4 read heads", "", "Santoro et al. 2016, Table 1",
                    {1: 36.4, 2: 82.8, 3: 91.0, 4: 92.6, 5: 94.9, 10: 98.1})

# Santoro et al. 2016, Table 1, 5 classes: people playing the same task on Omniglot (shown a character,
# they chose a label 1-5, then saw the true one), the row the app's human mode compares a player with.
HUMAN = Published("Human", "", "Santoro et al. 2016, Table 1",
                  {1: 34.5, 2: 57.3, 3: 70.1, 4: 71.8, 5: 81.4, 10: 92.4})


# Santoro et al. 2016, Table 2: 15 classes x 10 samples (T = 150). Their labels are strings of five characters
# of five values each (so a first instance sits near 0), not one-hot labels.
SANTORO_15 = Published("MANN (LRUA), 4 read heads, string labels", "", "Santoro et al. 2016, Table 2",
                       {1: 0.1, 2: 62.6, 3: 79.3, 4: 86.6, 5: 88.7, 10: 95.3})

# unixpickle/sgdstore's Omniglot experiment (its README): 15 classes in episodes of 100 steps (not 150), on
# Lake et al.'s background/evaluation split; an RNN controller whose memory is a network trained by SGD.
SGDSTORE_15 = Published("sgdstore, 100-step episodes", "", "unixpickle/sgdstore, experiments/omniglot",
                        {1: 9.7, 2: 77.1, 3: 84.7, 4: 87.4, 10: 87.7})


def published(dataset, classes):
    """The published rows a dataset (zoo.DATASETS) at a class count is compared with, in table order."""
    rows = {("omniglot", 5): (*TABLE1, SANTORO), ("mnist", 5): TABLE2, ("mnist-normalised", 5): TABLE2,
            ("omniglot", 15): (SANTORO_15, SGDSTORE_15)}
    return rows.get((dataset, classes), ())
