"""Devices and distributed training: where a process trains, and how processes agree.

Launched by ``torchrun``, every process trains on its share of each batch under
:class:`~torch.nn.parallel.DistributedDataParallel`; this module holds what that needs
besides the model: the device of a process, joining and leaving the process group,
work done once per machine, and the small collectives the trainer uses so that every
process stops and selects alike. Outside ``torchrun`` every function is a no-op or the
one-process answer.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

import torch

from sessionrec.errors import ConfigError, SessionrecError

__all__ = [
    "resolve_device",
    "init_distributed",
    "leave_distributed",
    "once_per_node",
    "rank_and_world",
    "all_reduce_sum",
    "from_rank_zero",
]

_T = TypeVar("_T")


def resolve_device(name: str) -> torch.device:
    """``"cpu"``, ``"cuda"`` or ``"auto"`` -> the device this process trains on: under
    ``torchrun``, CUDA device ``LOCAL_RANK``.

    Raises:
        ConfigError: ``"cuda"`` without a CUDA build of torch and a GPU.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if name != "cuda":
        raise ConfigError(
            f"device must be 'cpu', 'cuda' or 'auto', got {name!r}",
            options=("TrainConfig.device",),
        )
    if not torch.cuda.is_available():
        raise ConfigError(
            "device 'cuda': this torch has no CUDA device (a CPU build, or no GPU); train on "
            "the CPU (device 'cpu')",
            options=("TrainConfig.device",),
        )
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))


def init_distributed(device: str = "cpu") -> tuple[int, int]:
    """Join the process group ``torchrun`` describes (``WORLD_SIZE`` > 1 in the
    environment): the ``nccl`` backend when ``device`` (as :func:`resolve_device`) is a
    GPU, ``gloo`` on the CPU. Returns ``(rank, world_size)``; ``(0, 1)`` when not
    launched by ``torchrun``."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and dist.is_available() and not dist.is_initialized():
        where = resolve_device(device)
        if where.type == "cuda":
            torch.cuda.set_device(where)
            dist.init_process_group(backend="nccl", device_id=where)
        else:
            dist.init_process_group(backend="gloo")
    return rank_and_world()


def once_per_node(work: Callable[[], _T], then: Callable[[], _T]) -> _T:
    """``work()`` on the first process of each machine (``LOCAL_RANK`` 0), ``then()`` on
    the others once every first process is done: files written once per machine (e.g.
    the shards of a sharded ``fit``), then read by every process.

    The others wait in a collective of a ``gloo`` group without the default 30-minute
    timeout (the work may take hours). An error of a first process is raised on it and,
    as a :class:`~sessionrec.errors.SessionrecError`, on every other process. Outside
    ``torchrun`` (no process group): ``work()``.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return work()
    group = dist.new_group(backend="gloo", timeout=timedelta(days=7))
    first = int(os.environ.get("LOCAL_RANK", "0")) == 0
    result, error = None, None
    if first:
        try:
            result = work()
        except Exception as e:  # every process must reach the collective below
            error = e
    failed = torch.tensor([float(error is not None)])
    dist.all_reduce(failed, group=group)
    dist.destroy_process_group(group)
    if error is not None:
        raise error
    if failed.item() > 0:
        raise SessionrecError(
            "the first process of a machine failed (its error is in its output); this "
            "process stops too"
        )
    return result if first else then()  # type: ignore[return-value]


def leave_distributed() -> None:
    """Leave the process group (after training; a no-op in one process)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def rank_and_world() -> tuple[int, int]:
    """``(rank, world_size)`` of this process; ``(0, 1)`` outside a process group."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _collective_device() -> torch.device:
    """Where tensors of collectives live: the GPU under nccl, else the CPU."""
    import torch.distributed as dist

    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_sum(*values: float) -> list[float]:
    """Sums of ``values`` over the processes (the values themselves in one process)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=_collective_device())
    dist.all_reduce(t)
    return t.tolist()


def from_rank_zero(value: float) -> float:
    """Rank 0's ``value`` on every process (so all stop and select alike)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return value
    t = torch.tensor([value], dtype=torch.float64, device=_collective_device())
    dist.broadcast(t, 0)
    return float(t.item())
