"""Data-parallel plumbing: joining the process group torchrun starts, pinning each process to its cores, and the
one all-reduce per step that averages the gradients (and carries a request to stop).

torchrun starts the processes of one machine (`--standalone`) or of several (`--nnodes`, `--node-rank`,
`--rdzv-endpoint`) alike: each learns its RANK, LOCAL_RANK and WORLD_SIZE from the environment.
"""

import os

import torch
import torch.distributed as dist

from flmn_core.training.devices import pick_device, process_group_backend


def init_distributed(device_name="cpu"):
    """(rank, world_size, device): the device that `--device device_name` means for this process
    (`devices.pick_device`; ValueError for one it lacks), after joining the process group when launched by
    torchrun, with each process of this machine kept on cores of its own."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, pick_device(device_name)
    local_rank = int(os.environ.get("LOCAL_RANK", os.environ["RANK"]))
    device = pick_device(device_name, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)  # NCCL reduces on the current GPU
    dist.init_process_group(process_group_backend(device))
    pin_to_cores(local_rank, int(os.environ.get("LOCAL_WORLD_SIZE", world)))
    return dist.get_rank(), world, device


def leave_process_group():
    """Leave the process group of a data-parallel run once every process is done with it: a group destroyed
    while another process still finishes its last all-reduce can abort that process ("terminate called
    without an active exception")."""
    dist.barrier()
    dist.destroy_process_group()


def pin_to_cores(local_rank, local_world):
    """Run this process on the local_rank-th of `local_world` equal shares of the cores it may use. Every step
    of a data-parallel run waits for its slowest process, and processes that the scheduler moves between
    cores fall behind one another more often than pinned ones (docs/speed.md)."""
    cores = sorted(os.sched_getaffinity(0))
    share = max(len(cores) // local_world, 1)
    first = local_rank * share % len(cores)
    os.sched_setaffinity(0, set(cores[first:first + share]))


def average_gradients(parameters, world, while_waiting=None, stop=False):
    """Make each process's gradients the mean over all processes, in one all-reduce of them all: the
    gradient of the whole batch, as one process of it would compute it, in every process. -> True when any
    process asked to stop: the request rides in the same all-reduce (a second one would be a second wait for
    the slowest process at every step), so that every process stops after the same step.

    while_waiting: called again and again while the all-reduce waits for the other processes, until it
    returns False (it has nothing left to do).
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    flat = torch.cat([grad.flatten() for grad in grads] + [torch.tensor([float(stop)], device=grads[0].device)])
    work = dist.all_reduce(flat, async_op=True)
    while while_waiting is not None and not work.is_completed() and while_waiting():
        pass
    work.wait()
    stops = flat[-1].item()
    flat = flat[:-1].div_(world)
    for grad, part in zip(grads, flat.split([grad.numel() for grad in grads])):
        grad.copy_(part.view_as(grad))
    return bool(stops > 0)
