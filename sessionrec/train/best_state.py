"""The selected epoch's weights while training goes on (early stopping's "best state").

Training keeps the weights of the best epoch so far while later epochs change the model;
calibration, the recent refit and the test start from them. A second copy in memory
doubles the item table: 2 GB more at 5 million items and ``d = 100``. So a state of
:data:`SPILL_BYTES` or more goes to a file instead, written from the model's tensors and
read back into them in blocks of :data:`_BLOCK_BYTES` (plain reads into the parameters:
no second table in memory and no memory map whose pages would count as the process's),
and a small state stays a copy in memory, as before.

The file is ``best-epoch-N.bin`` in the run's folder (the checkpoint refers to it by
name, so that ``resume`` finds it) or in a private temporary folder (no run folder, or a
process other than rank 0). It holds the tensors' bytes one after the other, in the
order of :attr:`BestState.layout`, which the checkpoint stores too.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from sessionrec.errors import ArtifactError

__all__ = ["SPILL_BYTES", "BestState"]

#: A state of this many bytes or more is kept in a file, not in memory.
SPILL_BYTES = 256 * 2**20
_BLOCK_BYTES = 64 * 2**20  # read and written at a time
_PREFIX = "best-epoch-"


class BestState:
    """The best epoch's weights: a copy in memory below :data:`SPILL_BYTES`, else a file.

    Args:
        directory: where the file goes (``None``: a private temporary folder, removed by
            :meth:`close`).
        spill_bytes: the size from which the state goes to a file (``None``:
            :data:`SPILL_BYTES`).

    Attributes:
        epoch: the 0-based epoch kept (``None``: nothing kept yet).
        path: the file of a spilled state (``None``: in memory, or nothing kept).
        layout: ``[name, dtype, shape]`` of each tensor of a spilled state, in file order.
    """

    def __init__(self, directory: Path | None, spill_bytes: int | None = None) -> None:
        self._directory = directory
        self._spill_bytes = SPILL_BYTES if spill_bytes is None else spill_bytes
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._memory: dict[str, torch.Tensor] | None = None
        self.epoch: int | None = None
        self.path: Path | None = None
        self.layout: list[list[Any]] = []
        self._committed: Path | None = None  # the file the last checkpoint refers to

    @property
    def kept(self) -> bool:
        """Whether a state is kept."""
        return self.epoch is not None

    def keep(self, model: torch.nn.Module, epoch: int) -> None:
        """Keep ``model``'s current weights as the best state (of 0-based ``epoch``)."""
        state = model.state_dict()
        nbytes = sum(t.numel() * t.element_size() for t in state.values())
        self.epoch = epoch
        if nbytes < self._spill_bytes:
            self._memory = {k: v.detach().clone() for k, v in state.items()}
            self.path, self.layout = None, []
        else:
            self._memory = None
            self.path = self._folder() / f"{_PREFIX}{epoch + 1}.bin"
            self.layout = [[k, _dtype_name(v), list(v.shape)] for k, v in state.items()]
            tmp = self.path.with_name(self.path.name + ".tmp")
            with open(tmp, "wb") as fh:
                for tensor in state.values():
                    _write(fh, tensor.detach())
            os.replace(tmp, self.path)
        self._prune(keep=(self.path, self._committed))

    def load_into(self, model: torch.nn.Module) -> None:
        """Copy the kept weights into ``model`` (the same architecture).

        Raises:
            ArtifactError: a spilled file is missing, short, or of another layout.
        """
        if not self.kept:
            raise ValueError("no best state kept yet")
        if self._memory is not None:
            model.load_state_dict(self._memory)
            return
        assert self.path is not None
        state = model.state_dict()
        names = [entry[0] for entry in self.layout]
        if names != list(state) or any(
            list(state[k].shape) != shape or _dtype_name(state[k]) != dtype
            for k, dtype, shape in self.layout
        ):
            raise ArtifactError(
                f"{self.path}: its tensors are not those of this model; train again "
                "without resuming, or in a new folder",
                options=("Trainer.fit.resume",),
            )
        try:
            with open(self.path, "rb") as fh:
                with torch.no_grad():
                    for tensor in state.values():
                        _read(fh, tensor, self.path)
        except FileNotFoundError:
            raise ArtifactError(
                f"{self.path}: the best epoch's weights are missing; train again "
                "without resuming, or in a new folder",
                options=("Trainer.fit.resume",),
            ) from None

    def checkpoint_entries(self) -> dict[str, Any]:
        """The checkpoint's keys for the kept state: the tensors themselves
        (``best_model``) or the file's name and layout (``best_model_file``,
        ``best_model_layout``). Call :meth:`committed` once that checkpoint is written."""
        if self.path is None:
            return {"best_model": self._memory}
        return {"best_model_file": self.path.name, "best_model_layout": self.layout}

    def committed(self) -> None:
        """The checkpoint of :meth:`checkpoint_entries` is written: the files of earlier
        states go."""
        self._committed = self.path
        self._prune(keep=(self.path,))

    def restore(self, checkpoint: dict[str, Any], directory: Path, epoch: int) -> None:
        """The state a checkpoint of ``directory`` kept (either form of
        :meth:`checkpoint_entries`), as the best state of 0-based ``epoch``."""
        self.epoch = epoch
        if checkpoint.get("best_model_file"):
            self._memory = None
            self.path = directory / str(checkpoint["best_model_file"])
            self.layout = [list(entry) for entry in checkpoint["best_model_layout"]]
            self._committed = self.path
        else:
            self._memory, self.path, self.layout = checkpoint["best_model"], None, []

    def close(self) -> None:
        """The run is over: remove the private temporary folder, if one was made, and in
        the run's folder every file but the one its checkpoint refers to (a recent
        refit's result is in the saved model)."""
        self._prune(keep=(self._committed,))
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _folder(self) -> Path:
        if self._directory is not None:
            self._directory.mkdir(parents=True, exist_ok=True)
            return self._directory
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="sessionrec-best-")
        return Path(self._tmp.name)

    def _prune(self, keep: tuple[Path | None, ...]) -> None:
        """Remove the files of best states but those in ``keep`` (the current one, and
        the one the last checkpoint refers to: a killed run resumes from it)."""
        folder = self._directory or (None if self._tmp is None else Path(self._tmp.name))
        if folder is None or not folder.is_dir():
            return
        for path in folder.glob(f"{_PREFIX}*.bin"):
            if path not in keep:
                path.unlink(missing_ok=True)


def _dtype_name(tensor: torch.Tensor) -> str:
    """``"float32"`` for ``torch.float32``: the dtype as the layout names it."""
    return str(tensor.dtype).removeprefix("torch.")


def _flat_bytes(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor``'s bytes as a flat uint8 view (a contiguous tensor's own memory)."""
    return tensor.reshape(-1).view(torch.uint8)


def _write(fh: Any, tensor: torch.Tensor) -> None:
    flat = _flat_bytes(tensor.contiguous())
    for start in range(0, flat.numel(), _BLOCK_BYTES):
        block = flat[start : start + _BLOCK_BYTES]
        fh.write(memoryview(block.cpu().numpy()))  # a view on the CPU, a block's copy else


def _read(fh: Any, tensor: torch.Tensor, path: Path) -> None:
    """Fill ``tensor`` (a parameter or buffer of the model) from ``fh`` in blocks."""
    target = (
        tensor
        if tensor.is_contiguous()
        else torch.empty_like(tensor, memory_format=torch.contiguous_format)
    )
    flat = _flat_bytes(target)
    on_cpu = flat.device.type == "cpu"
    for start in range(0, flat.numel(), _BLOCK_BYTES):
        block = flat[start : start + _BLOCK_BYTES]
        buffer = block if on_cpu else torch.empty(block.numel(), dtype=torch.uint8)
        if fh.readinto(memoryview(buffer.numpy())) != block.numel():
            raise ArtifactError(
                f"{path}: shorter than the weights it should hold (a write was cut); "
                "train again without resuming",
                options=("Trainer.fit.resume",),
            )
        if not on_cpu:
            block.copy_(buffer)
    if target is not tensor:
        tensor.copy_(target)
