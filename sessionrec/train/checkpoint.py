"""The training checkpoint: what a killed or stopped run needs to continue, written
atomically after every epoch (``checkpoint.pt`` in the run's folder).

It holds the model's and the optimisers' state, the history, the best state so far and
the early-stopping counters, and the run's identity: the fingerprint of the training
data, the data contract (the validation share and the last clicks a model reads) and the
model config. A resumed run must be the same run: :func:`load_checkpoint` refuses one
whose identity differs (another dataset, another validation split, another
architecture), which would otherwise mix validation scores of different splits or fail
deep inside ``load_state_dict``. The number of epochs, the patience and the other
options of the loop may change.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from sessionrec.errors import ArtifactError, ConfigError

__all__ = ["save_checkpoint", "load_checkpoint", "run_identity"]


def run_identity(
    data_fingerprint: str, contract: dict[str, Any], model_config: dict[str, Any]
) -> dict[str, Any]:
    """What makes a training run the same run (JSON-ready)."""
    return {"data_fingerprint": data_fingerprint, "contract": contract, "model": model_config}


def save_checkpoint(path: Path, state: dict[str, Any], identity: dict[str, Any]) -> None:
    """Write ``state`` and the run's ``identity`` to ``path`` atomically (a temporary
    file renamed into place: a kill leaves the previous checkpoint)."""
    _atomic_torch_save({**state, "identity": json.dumps(identity)}, path)


def load_checkpoint(path: Path | None, identity: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint at ``path``, after checking that it is this run's.

    Raises:
        ArtifactError: there is no checkpoint to continue from.
        ConfigError: the checkpoint belongs to a run on other data, with another
            validation split or another model config (naming what differs).
    """
    if path is None or not path.is_file():
        where = "no output folder" if path is None else f"no checkpoint.pt in {path.parent}"
        raise ArtifactError(f"resume: {where} to continue from", options=("Trainer.fit.resume",))
    ck = torch.load(path, map_location="cpu", weights_only=True)
    saved = json.loads(ck["identity"]) if "identity" in ck else None  # older checkpoints
    if saved is not None and saved != identity:
        raise ConfigError(
            f"resume: {path} is the checkpoint of another run ({_differences(saved, identity)}); "
            "resume with the data and options it was started with, or start a new run in "
            "another folder",
            options=("Trainer.fit.resume",),
        )
    return ck


def _differences(saved: dict[str, Any], current: dict[str, Any]) -> str:
    parts = []
    if saved.get("data_fingerprint") != current.get("data_fingerprint"):
        parts.append("other training data (another data fingerprint)")
    for group in ("contract", "model"):
        old, new = saved.get(group) or {}, current.get(group) or {}
        for key in sorted(old.keys() | new.keys()):
            if old.get(key) != new.get(key):
                parts.append(f"{key} {old.get(key)!r} there, {new.get(key)!r} here")
    return "; ".join(parts[:6]) or "its identity differs"


def _atomic_torch_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)
