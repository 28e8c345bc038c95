"""Baselines that stand beside the model in every results table.

POP, S-POP, Item-KNN, SKNN, V-SKNN, STAN, VSTAN and SR (sequential rules), following the
reference implementations of the session-rec framework (Ludewig & Jannach, "Evaluation of
session-based recommendation algorithms", UMUAI 2018; ``rn5l/session-rec``:
``algorithms/baselines/pop.py``, ``spop.py``, ``sr.py``, ``algorithms/knn/iknn.py``,
``sknn.py``, ``vsknn.py``, ``stan.py``, ``vstan.py``), re-implemented on sparse matrices so
that a whole batch of prefixes is scored at once.

Every baseline follows scikit-learn's conventions: the constructor only stores
parameters, :meth:`Baseline.fit` takes training :class:`~sessionrec.data.sessions.Sessions`
and the catalogue size and returns ``self`` (fitted state ends with ``_``), and
:meth:`Baseline.scores` returns ``float32 [B, n_items]`` (higher is better) for a batch of
:class:`~sessionrec.data.sessions.Samples`. Each prefix is the current session; the
target is never looked at.

Recency: a training session's time is :attr:`Sessions.times` (its last click) when
present, else its position (benchmarks without timestamps list sessions in time order).

One family per module: :mod:`.base` (:class:`Baseline` and the shared helpers),
:mod:`.popularity` (POP, S-POP, category popularity), :mod:`.item_knn` (Item-KNN),
:mod:`.session_knn` (SKNN, V-SKNN), :mod:`.stan` (STAN, VSTAN) and :mod:`.rules` (SR).
This package imports numpy and scipy only.
"""

from __future__ import annotations

import inspect
from typing import Any

from sessionrec.errors import ConfigError
from sessionrec.evaluate.baselines.base import Baseline, item_click_counts
from sessionrec.evaluate.baselines.item_knn import ItemKNN
from sessionrec.evaluate.baselines.popularity import CategoryPopularity, Pop, SessionPop
from sessionrec.evaluate.baselines.rules import SequentialRules
from sessionrec.evaluate.baselines.session_knn import SKNN, VSKNN
from sessionrec.evaluate.baselines.stan import STAN, VSTAN

__all__ = [
    "Baseline",
    "Pop",
    "SessionPop",
    "ItemKNN",
    "SKNN",
    "VSKNN",
    "STAN",
    "VSTAN",
    "SequentialRules",
    "CategoryPopularity",
    "BASELINES",
    "make_baseline",
    "item_click_counts",
]


BASELINES: dict[str, type[Baseline]] = {
    "pop": Pop,
    "spop": SessionPop,
    "itemknn": ItemKNN,
    "sknn": SKNN,
    "vsknn": VSKNN,
    "stan": STAN,
    "vstan": VSTAN,
    "sr": SequentialRules,
    "category-pop": CategoryPopularity,  # needs categories=: not in the CLI's --method
}


def make_baseline(method: str, **params: Any) -> Baseline:
    """A baseline by name (one of :data:`BASELINES`) with constructor ``params``."""
    try:
        cls = BASELINES[method]
    except KeyError:
        raise ConfigError(
            f"unknown baseline {method!r}; known: {', '.join(BASELINES)}",
            options=("make_baseline.method",),
        ) from None
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ConfigError(
            f"{method}: unknown parameter(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(allowed) if allowed else '(none)'}",
            options=("make_baseline.params",),
        )
    return cls(**params)
