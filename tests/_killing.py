"""A `sessionrec` command that SIGKILLs itself in the middle of its second epoch."""

from __future__ import annotations

import signal
import subprocess
import sys

KILLED_MID_EPOCH = """
import os, signal, sys
import torch.nn.functional as F
import sessionrec.train.checkpoint as train
from sessionrec.cli import main

real_save, real_loss = train._atomic_torch_save, F.cross_entropy
checkpoints, steps = [], []

def save(obj, path):
    real_save(obj, path)
    checkpoints.append(path)

def loss(*args, **kwargs):
    if len(checkpoints) == 1:  # epoch 2, after epoch 1's checkpoint
        steps.append(1)
        if len(steps) == {step}:  # no clean-up runs, no final save
            os.kill(os.getpid(), signal.SIGKILL)
    return real_loss(*args, **kwargs)

train._atomic_torch_save, F.cross_entropy = save, loss
main(sys.argv[1:])
"""


def run_killed_mid_epoch(args: list[str], step: int) -> None:
    """Run ``sessionrec ARGS`` in a subprocess killed (SIGKILL) at training step ``step``
    of epoch 2; asserts that it was."""
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_MID_EPOCH.format(step=step), *args],
        capture_output=True,
        timeout=600,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
