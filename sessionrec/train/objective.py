r"""The training objective: full cross-entropy over every item, or a sampled softmax whose
cost does not grow with the catalog.

**Full softmax** (the SR-GNN paper): for session :math:`i` with target :math:`t_i`,
:math:`\mathcal{L}_i = -z_{i t_i} + \log \sum_{j=1}^{N} e^{z_{ij}}` over all :math:`N`
items. A step costs :math:`O(B N d)` and touches every row of the item table (NISER
normalises all of them), so at millions of items it dominates.

**Sampled softmax** (Bengio & Senécal, IEEE TNN 2008; Jean et al., ACL 2015), with the
in-batch negatives and the logQ correction of Yi et al. (RecSys 2019) and a shared set of
sampled negatives as in mixed negative sampling (Yang et al., WWW 2020): the candidates of
a step are the batch's targets plus :math:`K` items drawn i.i.d. from
:math:`q_c \propto (n_c + 1)^{\alpha}` (:math:`n_c`: the item's target count in the
training samples; items that are never a target are never drawn, as the full softmax of
a content model leaves them out), deduplicated into a set :math:`C`. The expected number
of times item :math:`c` enters the candidate draw is

.. math::

    E_c = B\,\pi_c + K\,q_c, \qquad \pi_c = n_c / \textstyle\sum_j n_j

(the batch's targets are drawn from the target distribution :math:`\pi`), and every
candidate logit is corrected by it:

.. math::

    \tilde z_{ic} = z_{ic} - \log E_c, \qquad
    \mathcal{L}_i = -\tilde z_{i t_i} + \log \sum_{c \in C} e^{\tilde z_{ic}},

an estimate of the full softmax's cross-entropy whose gradient is unbiased in the limit
of many samples (the correction undoes the over-representation of popular items among
the candidates). A step's item vectors are computed for the session items and the
candidates only (``SRGNN.item_rows``: NISER normalises those rows), the gradients of the
item tables are sparse, and :class:`~sessionrec.train.optim.LazyAdam` updates only the
rows used, with the L2 penalty of those rows: no table-sized tensor is made per step.

:func:`choose_loss` picks the full softmax up to :data:`SAMPLED_SOFTMAX_MIN_ITEMS` items
and the sampled one above (``TrainConfig.loss="auto"``).
"""

from __future__ import annotations

import warnings
from dataclasses import fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from sessionrec.errors import ConfigError
from sessionrec.nn.srgnn import SRGNN
from sessionrec.train.evaluation import item_logits

__all__ = [
    "SAMPLED_SOFTMAX_MIN_ITEMS",
    "SAMPLED_ONLY_FIELDS",
    "LOSSES",
    "choose_loss",
    "warn_unused_sampled_settings",
    "SampledSoftmax",
    "BatchLoss",
]

#: ``loss="auto"`` trains with the sampled softmax above this many items. Measured
#: (README, "Large catalogs"): on Diginetica (43,097 items) the `default` config trains
#: 6x faster per epoch with it, validates as well or better after every epoch, and tests
#: 55.11 / 19.52 (HR@20 / MRR@20) after the refit against 55.03 / 19.51 with the full
#: softmax; smaller catalogs keep the full softmax, which is cheap there.
SAMPLED_SOFTMAX_MIN_ITEMS = 40_000
#: The values of ``TrainConfig.loss``.
LOSSES = ("auto", "full", "sampled")


def choose_loss(loss: str, n_items: int) -> str:
    """``"full"`` or ``"sampled"``: ``loss`` itself, or for ``"auto"`` the sampled softmax
    above :data:`SAMPLED_SOFTMAX_MIN_ITEMS` items.

    Raises:
        ConfigError: an unknown ``loss``.
    """
    if loss not in LOSSES:
        raise ConfigError(
            f"loss must be one of {', '.join(LOSSES)}, got {loss!r}", options=("TrainConfig.loss",)
        )
    if loss == "auto":
        return "sampled" if n_items > SAMPLED_SOFTMAX_MIN_ITEMS else "full"
    return loss


#: ``TrainConfig`` fields that only the sampled softmax reads.
SAMPLED_ONLY_FIELDS = ("num_negatives", "negative_exponent")


def warn_unused_sampled_settings(train_config: Any, objective: str, n_items: int) -> None:
    """Warn when a run trains with the full softmax (``objective``, from
    :func:`choose_loss`) although :data:`SAMPLED_ONLY_FIELDS` were changed from their
    defaults: they would be recorded in the model's config, and unused."""
    if objective != "full":
        return
    defaults = {f.name: f.default for f in fields(train_config)}
    changed = [n for n in SAMPLED_ONLY_FIELDS if getattr(train_config, n) != defaults[n]]
    if changed:
        why = (
            f"loss='auto' keeps it up to {SAMPLED_SOFTMAX_MIN_ITEMS:,} items; this catalog "
            f"has {n_items:,}"
            if train_config.loss == "auto"
            else "loss='full'"
        )
        one = len(changed) == 1
        warnings.warn(
            f"{', '.join(changed)} {'is' if one else 'are'} read by the sampled softmax only, "
            f"and this run trains with the full softmax ({why}): "
            f"{'it has' if one else 'they have'} no effect. Set loss='sampled' to use "
            f"{'it' if one else 'them'}",
            UserWarning,
            stacklevel=4,  # the caller of Trainer.fit (through Trainer._start)
        )


class SampledSoftmax:
    r"""The sampled-softmax loss of a batch (see the module docstring).

    Args:
        target_counts: int ``[n_items]``, how often each item is a target in the
            training samples (:math:`n_c`).
        num_negatives: :math:`K`, items drawn per step.
        exponent: :math:`\alpha` of :math:`q_c \propto (n_c + 1)^\alpha` (0: uniform over
            the items that are targets; 1: their popularity).
        include_never_targets: also draw items that are never a target (a content
            model's ``cold_negatives``): then :math:`q_c \propto (n_c + 1)^\alpha` over
            every item.
        device: where the sampling tables live.

    Shapes:
        - :meth:`loss`: a batch of ``B`` session graphs and int64 targets ``[B]`` -> a
          scalar loss
    """

    def __init__(
        self,
        target_counts: np.ndarray,
        num_negatives: int,
        exponent: float,
        include_never_targets: bool = False,
        device: torch.device | None = None,
    ) -> None:
        counts = np.asarray(target_counts, dtype=np.float64)
        eligible = np.ones_like(counts, dtype=bool) if include_never_targets else counts > 0
        if not eligible.any():
            raise ConfigError("sampled softmax: no item is ever a target in the training data")
        q = np.where(eligible, (counts + 1.0) ** exponent, 0.0)
        q /= q.sum()
        pi = counts / max(counts.sum(), 1.0)
        self.num_negatives = int(num_negatives)
        self.exponent, self.include_never_targets = exponent, include_never_targets
        self.device = device or torch.device("cpu")
        self._cdf = torch.from_numpy(np.cumsum(q)).to(self.device)  # float64 [n_items]
        self._cdf[-1] = 1.0  # exactly, whatever the rounding of the sum
        self._q = torch.from_numpy(q).to(self.device)
        self._pi = torch.from_numpy(pi).to(self.device)

    def with_counts(self, target_counts: np.ndarray) -> SampledSoftmax:
        r"""The same loss over other samples' ``target_counts``: every target of a batch
        needs :math:`E_c > 0` (a target outside the counts would get
        :math:`\log 0`)."""
        return SampledSoftmax(
            target_counts,
            self.num_negatives,
            self.exponent,
            self.include_never_targets,
            self.device,
        )

    def negatives(self) -> torch.Tensor:
        """:math:`K` item indices drawn i.i.d. from :math:`q` (int64 ``[K]``; inverse CDF,
        :math:`O(K \\log N)`), from torch's global generator (seeded per epoch)."""
        u = torch.rand(self.num_negatives, dtype=torch.float64, device=self.device)
        return torch.searchsorted(self._cdf, u, right=True).clamp_(max=len(self._cdf) - 1)

    def log_expected_counts(self, candidates: torch.Tensor, batch_size: int) -> torch.Tensor:
        r""":math:`\log E_c = \log(B \pi_c + K q_c)` of ``candidates`` (float32 ``[C]``)."""
        expected = batch_size * self._pi[candidates] + self.num_negatives * self._q[candidates]
        return torch.log(expected).to(torch.float32)

    def loss(
        self,
        model: SRGNN,
        graph: Any,
        targets: torch.Tensor,
        label_smoothing: float = 0.0,
    ) -> torch.Tensor:
        """The batch's mean sampled-softmax cross-entropy (a scalar)."""
        batch_size = len(targets)
        # candidates: the batch's targets and K drawn items, each once
        candidates, target_column = torch.unique(
            torch.cat([targets, self.negatives()]), return_inverse=True
        )  # [C], [B + K]
        # one gather (and NISER normalisation) for the session items and the candidates
        nodes = graph.x
        rows_index, position = torch.unique(torch.cat([nodes, candidates]), return_inverse=True)
        rows = model.item_rows(rows_index)  # [R, d]
        node_vectors = rows[position[: len(nodes)]]  # [N_nodes, d]
        candidate_vectors = rows[position[len(nodes) :]]  # [C, d]
        s_h = model.session_embedding(graph, node_vectors=node_vectors)  # [B, d]
        logits = model.candidate_logits(s_h, candidate_vectors)  # [B, C]
        logits = logits - self.log_expected_counts(candidates, batch_size)
        return F.cross_entropy(logits, target_column[:batch_size], label_smoothing=label_smoothing)


class BatchLoss(torch.nn.Module):
    """The loss of a training batch as one module, for
    :class:`~torch.nn.parallel.DistributedDataParallel` to wrap: the full cross-entropy
    over every item, or ``sampled``'s loss.

    Shapes:
        - forward: a batch of ``B`` session graphs and int64 targets ``[B]`` -> a scalar
    """

    def __init__(
        self,
        model: SRGNN,
        bf16: bool,
        label_smoothing: float,
        sampled: SampledSoftmax | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.bf16 = bf16
        self.label_smoothing = label_smoothing
        self.sampled = sampled

    def forward(self, graph: Any, targets: torch.Tensor) -> torch.Tensor:
        if self.sampled is not None:
            return self.sampled.loss(self.model, graph, targets, self.label_smoothing)
        logits = item_logits(self.model, graph, self.bf16)  # [B, n_items]
        return F.cross_entropy(logits, targets, label_smoothing=self.label_smoothing)
