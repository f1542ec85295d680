"""A training run's batches, in order, sampled in the training process or ahead of it in a second one.

Sampling an Experiment II batch (rotating, shifting and downscaling 800 images) costs a third of a training
step or more on one core. `--sample-ahead` moves it to a second process, on the second core, so that the
step never waits for it. The episodes are exactly those of sampling in place: the second process draws from
the run's generator, in the same order, and hands back the generator's state after each batch, so that the
run's generator always stands after the last batch trained on and `--resume` continues the same stream.

    batches = Batches(sample, run.generator, ahead=True)   # sample(generator=...) -> Episodes
    batch = batches.next()
    batches.close()
"""

import queue
import signal
import time

import torch
import torch.multiprocessing as mp

QUEUED = 2  # batches sampled ahead at most: enough to hide the sampling, little memory held


class Batches:
    """The next batch of a run: sampled here (ahead=False) or taken from a sampling process (ahead=True)."""

    def __init__(self, sample, generator, ahead):
        self.sample, self.generator = sample, generator
        self.process = None
        self.sampler_cpu_seconds = 0.0  # CPU time of the sampling process, as of the last batch taken
        if ahead:
            # fork: the process inherits the data without copying it, and starts at once.
            context = mp.get_context("fork")
            self.queue = context.Queue(QUEUED)
            self.process = context.Process(target=_sample_forever, args=(self.queue, sample, generator.get_state()),
                                           daemon=True, name="flmn-sampler")
            self.process.start()

    def next(self):
        """The next batch (Episodes); the generator now stands after it."""
        if self.process is None:
            return self.sample(generator=self.generator)
        while True:
            try:
                batch, state, self.sampler_cpu_seconds = self.queue.get(timeout=1.0)
                break
            except queue.Empty:
                if not self.process.is_alive():
                    raise RuntimeError(f"the sampling process stopped (exit code {self.process.exitcode}); "
                                       "continue with --resume, or without --sample-ahead") from None
        self.generator.set_state(state)
        return batch

    def cpu_seconds(self):
        """CPU time so far of this process and of the sampling process (as of the last batch taken)."""
        return time.process_time() + self.sampler_cpu_seconds

    def close(self):
        """Stop the sampling process, if any."""
        if self.process is not None:
            self.process.kill()
            self.process.join()
            self.process = None


def _sample_forever(out, sample, state):
    """The sampling process: each batch, the generator's state after it and this process's CPU time so far,
    into `out`, until killed. Ctrl-C and SIGTERM are left to the training process, which finishes its step,
    saves, and then stops this one."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    torch.set_num_threads(1)
    generator = torch.Generator()
    generator.set_state(state)
    while True:
        batch = sample(generator=generator)
        out.put((batch, generator.get_state(), time.process_time()))
