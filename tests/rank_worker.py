"""`flmn train` in a process that torchrun starts, which then writes this rank's weights and training state to
OUT/rank{RANK}.pt, so that tests/test_distributed.py can compare the replicas of a data-parallel run."""

import os
import sys

from flmn_core.training import train

if __name__ == "__main__":
    run = train.main(sys.argv[1:])
    run.save(f"rank{os.environ['RANK']}.pt", {"rank": int(os.environ["RANK"])}, with_training=True)
