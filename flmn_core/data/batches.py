"""A training run's batches, in order: sampled in the training process, ahead of it in a second one, or, in
each process of a data-parallel run, while it waits for the others.

Sampling an Experiment II batch (rotating, shifting and downscaling 800 images) costs a third of a training
step or more on one core. `--sample-ahead` moves it to a second process, on the second core, so that the
step never waits for it. The episodes are exactly those of sampling in place: the second process draws from
the run's generator, in the same order, and hands back the generator's state after each batch, so that the
run's generator always stands after the last batch trained on and `--resume` continues the same stream.

    batches = Batches(sample, run.generator, ahead=True)   # sample(generator=...) -> Episodes
    batch = batches.next()
    batches.close()

A data-parallel run has no core to spare for a sampling process. There `BankedBatches` fills each process's
wait for the slower one at the end of a step (`sample_spare`) with episodes of its next batches. Which core is
the slower one changes every few steps on these machines, so the episodes banked while a process is ahead
spare it sampling when it falls behind.
"""

import collections
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

    def sample_spare(self):
        """Nothing to sample between batches (see `BankedBatches`): False."""
        return False

    def cpu_seconds(self):
        """CPU time so far of this process and of the sampling process (as of the last batch taken)."""
        return time.process_time() + self.sampler_cpu_seconds

    def close(self):
        """Stop the sampling process, if any."""
        if self.process is not None:
            self.process.kill()
            self.process.join()
            self.process = None


class BankedBatches:
    """Batches of `size` episodes from a bank that `sample_spare` fills, one episode at a time, up to `room`
    (sample(generator=..., batch_size=1) -> Episodes).

    The episodes are drawn one at a time from a copy of the run's generator, so they do not depend on when
    they were drawn; after each batch the run's generator stands after its last episode, so `--resume`
    continues the same stream.
    """

    def __init__(self, sample, generator, size, room):
        if room < size:
            raise ValueError(f"a bank of {room} episodes cannot hold a batch of {size}")
        self.sample, self.generator, self.size, self.room = sample, generator, size, room
        self.drawing = torch.Generator()
        self.drawing.set_state(generator.get_state())
        self.bank = collections.deque()  # (one episode, the generator's state after it)

    def sample_spare(self):
        """Bank one more episode, if there is room: True if it did."""
        if len(self.bank) >= self.room:
            return False
        self.bank.append((self.sample(generator=self.drawing, batch_size=1), self.drawing.get_state()))
        return True

    def next(self):
        """The next batch (Episodes), banked or sampled now; the run's generator now stands after it."""
        while len(self.bank) < self.size:
            self.sample_spare()
        episodes, states = zip(*(self.bank.popleft() for _ in range(self.size)))
        self.generator.set_state(states[-1])
        return type(episodes[0])(*(torch.cat(field) for field in zip(*episodes)))

    def cpu_seconds(self):
        """CPU time so far of this process."""
        return time.process_time()

    def close(self):
        """Nothing to stop."""


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
