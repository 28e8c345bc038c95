"""Item-to-item baseline: Item-KNN."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from sessionrec.data.sessions import Samples, Sessions
from sessionrec.errors import ConfigError
from sessionrec.evaluate.baselines.base import Baseline, check_samples

__all__ = ["ItemKNN"]


# -- item-to-item ----------------------------------------------------------------------
class ItemKNN(Baseline):
    """Item-KNN: items that co-occur in sessions with the last clicked item.

    As session-rec's ``ItemKNN`` (Hidasi et al., 2016): with :math:`X` the session x item
    click-count matrix and :math:`supp_i` the clicks on item :math:`i`,

    .. math::

        s_{ij} = \\frac{(X^\\top X)_{ij}}{(supp_i + \\lambda)^{\\alpha}
                 (supp_j + \\lambda)^{1 - \\alpha}}, \\quad i \\ne j

    (``alpha = 0.5`` is a regularised cosine). Each item keeps its ``n_sims`` most
    similar items; a prefix is scored by the row of its last click only.

    Args:
        n_sims: neighbours kept per item (session-rec: 100).
        lmbd: support regularisation :math:`\\lambda` (session-rec: 20).
        alpha: normalisation balance :math:`\\alpha` (session-rec: 0.5).
    """

    name = "itemknn"

    def __init__(self, n_sims: int = 100, lmbd: float = 20.0, alpha: float = 0.5) -> None:
        self.n_sims = n_sims
        self.lmbd = lmbd
        self.alpha = alpha

    def fit(self, train: Sessions, n_items: int) -> ItemKNN:
        if not (isinstance(self.n_sims, (int, np.integer)) and self.n_sims >= 1):
            raise ConfigError(
                f"ItemKNN: n_sims must be an int >= 1, got {self.n_sims!r}",
                options=("ItemKNN.n_sims",),
            )
        if self.lmbd < 0 or not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(
                f"ItemKNN: need lmbd >= 0 and 0 <= alpha <= 1, got lmbd={self.lmbd}, "
                f"alpha={self.alpha}",
                options=("ItemKNN.lmbd", "ItemKNN.alpha"),
            )
        supp = self._fit_common(train, n_items).astype(np.float64)
        n_sessions = len(train)
        rows = np.repeat(np.arange(n_sessions, dtype=np.int64), train.lengths)
        clicks = sp.csr_matrix(
            (np.ones(train.n_clicks), (rows, train.items)), shape=(n_sessions, n_items)
        )  # [n_sessions, n_items], duplicates summed: click counts
        co = (clicks.T @ clicks).tocsr()  # [n_items, n_items]: sum_s cnt_s(i) cnt_s(j)
        co.setdiag(0)
        co.eliminate_zeros()
        co.sort_indices()
        r = np.repeat(np.arange(n_items), np.diff(co.indptr))
        c = co.indices
        norm = np.power(supp[r] + self.lmbd, self.alpha) * np.power(
            supp[c] + self.lmbd, 1.0 - self.alpha
        )
        norm[norm == 0] = 1.0
        sim = co.data / norm
        # keep the n_sims best per row: by similarity, then lower item index
        order = np.lexsort((c, -sim, r))
        row_start = co.indptr[:-1][r[order]]
        keep = order[(np.arange(len(order)) - row_start) < self.n_sims]
        self.similarities_ = sp.csr_matrix(
            (sim[keep], (r[keep], c[keep])), shape=(n_items, n_items)
        )  # [n_items, n_items], <= n_sims per row
        return self

    def scores(self, samples: Samples) -> np.ndarray:
        self._check_fitted()
        check_samples(samples, self.n_items_)
        last = samples.items[samples.offsets[1:] - 1]  # [B]
        return self.similarities_[last].toarray().astype(np.float32)
