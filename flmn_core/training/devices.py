"""Where training and evaluation compute: the `--device` of `flmn train` and `flmn evaluate`.

    auto      a CUDA GPU if there is one, else Apple's MPS, else the CPU (nanoGPT's and PyTorch's examples' order)
    cpu       the CPU
    cuda      a CUDA GPU: the first, or in a data-parallel run the one of the process's LOCAL_RANK
    cuda:N    the N-th CUDA GPU (one process only)
    mps       Apple's GPU (one process only: gloo and NCCL reduce no MPS tensors)

A run builds its weights on the CPU and moves them, so that a seed gives the same initial weights on every
device; its episodes are sampled on the CPU, from its CPU generator, and each batch is moved to the device for
its step, so that a seed gives the same episodes on every device too (flmn_core.data.batches is unchanged:
sampling ahead and banking stay on the CPU). Checkpoints hold CPU tensors only (flmn_core.model.checkpoint).
The app computes on the CPU.
"""

import torch

DEVICES = "auto (a CUDA GPU, else MPS, else the CPU), cpu, cuda, cuda:N or mps"  # what --device takes


def pick_device(name, local_rank=None):
    """`--device` name -> torch.device. local_rank: this process's LOCAL_RANK in a data-parallel run (None in
    one process), whose GPU `cuda` then means. Raises ValueError, naming the value, for a device that is not
    one or that this machine lacks."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device {name}: not a device; give {DEVICES}") from None
    if device.type == "cpu":
        return torch.device("cpu")
    if device.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"--device {name}: this machine has no MPS device (torch {torch.__version__})")
        if local_rank is not None:
            raise ValueError(f"--device {name}: a data-parallel run needs CUDA GPUs or CPUs; "
                             "train on MPS in one process")
        return device
    if device.type != "cuda":
        raise ValueError(f"--device {name}: not a device for training; give {DEVICES}")
    return cuda_device(name, device.index, local_rank)


def cuda_device(name, index, local_rank):
    """The CUDA GPU that `--device name` (index: its N, or None) means for this process -> torch.device."""
    if not torch.cuda.is_available():
        raise ValueError(f"--device {name}: this machine has no CUDA GPU that torch {torch.__version__} can use")
    if index is not None and local_rank is not None:
        raise ValueError(f"--device {name}: each process of a data-parallel run takes the GPU of its LOCAL_RANK; "
                         "give --device cuda")
    index = index if index is not None else local_rank or 0
    if index >= torch.cuda.device_count():
        raise ValueError(f"--device {name}: GPU {index} does not exist; this machine has {torch.cuda.device_count()}")
    return torch.device("cuda", index)


def process_group_backend(device):
    """The torch.distributed backend of a data-parallel run on `device`: gloo on CPUs; on GPUs NCCL for the
    tensors on them (the gradients) and gloo for those on the CPU (validation's counts)."""
    return "cpu:gloo,cuda:nccl" if device.type == "cuda" else "gloo"


def model_device(model):
    """The device a model's weights are on."""
    return next(model.parameters()).device
