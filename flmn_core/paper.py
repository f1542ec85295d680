"""The published numbers this project compares itself with, in one place.

Per-instance accuracy in percent, keyed by instance number (1 = the first time a class is shown in an
episode). Only the cells the sources report are stored; a missing key means "not reported here", never 0.
Everything is 5 classes x 10 samples per episode (T = 50) on Omniglot's held-out characters, except
Table 2 (zero-shot miniMNIST: trained on Omniglot, tested on MNIST digits).
"""

from dataclasses import dataclass

FLMN_PAPER = "Mureja, Park, Yoo 2017, Meta-Learning via Feature-Label Memory Network"
SANTORO_PAPER = "Santoro et al. 2016, Meta-Learning with Memory-Augmented Neural Networks"

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
        """The row as a viz.instance_accuracy_figure series: fractions at the reported instances."""
        instances = sorted(self.accuracy)
        return {"instances": instances, "accuracy": [self.accuracy[k] / 100 for k in instances]}


# The FLMN paper's Table 1 (Omniglot). The MANN row is the FLMN paper's own baseline run (one read head,
# one N x M memory), not Santoro et al.'s numbers. Experiment II cells are not recorded here yet.
TABLE1 = (
    Published("FLMN", "I", "Mureja et al. 2017, Table 1", {1: 31.1, 2: 85.6, 3: 88.7, 10: 94.1}),
    Published("MANN", "I", "Mureja et al. 2017, Table 1", {1: 21.6, 2: 66.7, 3: 74.0, 10: 78.1}),
)

# The FLMN paper's Table 2: trained on Omniglot, tested zero-shot on miniMNIST.
TABLE2 = (
    Published("FLMN", "", "Mureja et al. 2017, Table 2", {1: 28.5, 2: 67.6, 10: 80.5}),
)

# Santoro et al. 2016, Table 1, 5 classes: MANN with LRU access (LSTM controller, 4 read heads).
SANTORO = Published("MANN (LRUA), 4 read heads", "", "Santoro et al. 2016, Table 1",
                    {1: 36.4, 2: 82.8, 3: 91.0, 5: 94.9, 10: 98.1})


# The published rows each of our evaluation datasets (zoo.DATASETS) is compared with, in this order.
BY_DATASET = {"omniglot": (*TABLE1, SANTORO), "mnist": TABLE2}
