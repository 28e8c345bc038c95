"""Popularity baselines: POP, S-POP, and the content baseline category popularity."""

from __future__ import annotations

import numpy as np

from sessionrec.data.sessions import Samples, Sessions
from sessionrec.errors import ConfigError
from sessionrec.evaluate.baselines.base import Baseline, check_samples, distinct_last, prefix_rows

__all__ = ["Pop", "SessionPop", "CategoryPopularity"]


def _dense_rank(values: np.ndarray) -> np.ndarray:
    """``0`` for the smallest distinct value, ``1`` for the next, ...; equal values tie.

    Used as a float32-exact stand-in for a monotone score (``n_items < 2**24``).
    """
    return np.unique(values, return_inverse=True)[1].astype(np.float32)


# -- popularity -------------------------------------------------------------------------
class Pop(Baseline):
    """POP: every session gets the most clicked items of the training data.

    session-rec scores :math:`r_i = supp_i / (1 + supp_i)` with :math:`supp_i` the
    training clicks of item :math:`i`; we return the dense rank of :math:`supp_i`, the same
    ranking, exactly representable in float32 (no ties between different supports).
    """

    name = "pop"

    def __init__(self) -> None:
        pass  # no parameters

    def fit(self, train: Sessions, n_items: int) -> Pop:
        counts = self._fit_common(train, n_items)
        self.item_scores_ = _dense_rank(counts)  # [n_items]
        return self

    def scores(self, samples: Samples) -> np.ndarray:
        self._check_fitted()
        return np.broadcast_to(self.item_scores_, (len(samples), self.n_items_)).copy()


class SessionPop(Baseline):
    """S-POP: items clicked most often in the current session, ties broken by popularity.

    As in session-rec's ``SessionPop``:
    :math:`r_{s,i} = supp_{s,i} + [i \\in top_n]\\, supp_i / (1 + supp_i)`, with
    :math:`supp_{s,i}` the clicks on :math:`i` in the prefix and :math:`top_n` the
    ``top_n`` most clicked training items. As the popularity term is below 1, the
    session count decides and popularity only breaks its ties; we encode the same order
    exactly in float32 as :math:`supp_{s,i} (top_n + 1) + \\mathrm{denserank}(supp_i)`.

    Args:
        top_n: how many popular items get the popularity term (session-rec: 100).
    """

    name = "spop"

    def __init__(self, top_n: int = 100) -> None:
        self.top_n = top_n

    def fit(self, train: Sessions, n_items: int) -> SessionPop:
        if not (isinstance(self.top_n, (int, np.integer)) and self.top_n >= 0):
            raise ConfigError(
                f"SessionPop: top_n must be an int >= 0, got {self.top_n!r}",
                options=("SessionPop.top_n",),
            )
        counts = self._fit_common(train, n_items)
        top_n = min(int(self.top_n), n_items)
        top = np.lexsort((np.arange(n_items), -counts))[:top_n]  # most clicked, then index
        bonus = np.zeros(n_items, dtype=np.float32)
        if top_n:
            # 1 .. n_distinct over the top items' supports; equal supports tie
            bonus[top] = _dense_rank(counts[top]) + 1.0
        self.popularity_bonus_ = bonus  # [n_items], in [0, top_n]
        self.session_weight_ = float(top_n + 1)
        return self

    def scores(self, samples: Samples) -> np.ndarray:
        self._check_fitted()
        check_samples(samples, self.n_items_)
        out = np.broadcast_to(self.popularity_bonus_, (len(samples), self.n_items_)).copy()
        row, pos = prefix_rows(samples)
        d_row, d_item, _, count = distinct_last(row, samples.items, pos, self.n_items_)
        out[d_row, d_item] += (count * self.session_weight_).astype(np.float32)
        return out


# -- content: category popularity ---------------------------------------------------------
class CategoryPopularity(Baseline):
    """Category popularity: the most popular items of the session's favourite categories.

    A content baseline for cold-start evaluation: it can recommend an item without any
    training click through the item's category. For a prefix :math:`x_1 .. x_n` with
    categories :math:`c(x_t)` (code 0: unknown), the session's affinity for category
    :math:`c` weighs recent clicks more:

    .. math::

        a_s(c) = \\sum_{t=1}^{n} [c(x_t) = c]\\; w_t, \\qquad w_t = \\frac{1}{n - t + 1}
        \\quad (c \\ne 0;\\ a_s(0) = 0)

    (the last click weighs 1, the one before 1/2, ...). The item prior is the training
    click count for clicked items, and for an item without clicks the mean count of the
    clicked items of its category (a new item is as likely as an average item of its
    category; 0 when its category is unknown or has no clicked item):

    .. math::

        p_j = \\begin{cases} supp_j & supp_j > 0 \\\\
              \\operatorname{mean}\\{supp_i : c(i) = c(j),\\ supp_i > 0\\} & \\text{else}
              \\end{cases}

    Items are ranked lexicographically: by :math:`a_s(c(j))`, then by :math:`p_j` (then,
    in :func:`~sessionrec.evaluate.metrics.top_k`, by lower index). The scores encode this
    order exactly as

    .. math:: \\hat r_{s,j} = \\mathrm{rank}_s(a_s(c(j)))\\cdot R + \\mathrm{rank}(p_j)

    with :math:`\\mathrm{rank}_s` the dense rank (0, 1, ...) of the affinity among the
    row's distinct category affinities (affinities within a relative 1e-9 count as equal,
    so float rounding never splits mathematically equal sums such as
    :math:`1 = 1/2 + 1/3 + 1/6`), :math:`\\mathrm{rank}(p_j)` the dense rank of the
    prior over all items and :math:`R` the number of distinct priors. (A weighted sum
    such as :math:`a_s(c(j))(1 + \\max p) + p_j` is not lexicographic, as affinities can
    differ by less than 1.) Scores are float32 when they are exact in float32
    (:math:`(C + 1) R \\le 2^{24}` with :math:`C + 1` the category codes), else float64.

    Args:
        categories: int code of every item ``[n_items]`` (0: unknown), e.g.
            ``catalog.align(vocab).categorical["category"].codes[:n_items]``.
    """

    name = "category-pop"

    def __init__(self, categories: np.ndarray | None = None) -> None:
        self.categories = categories

    def fit(self, train: Sessions, n_items: int) -> CategoryPopularity:
        if self.categories is None:
            raise ConfigError(
                "CategoryPopularity needs categories= (an int code per item, 0: unknown), "
                "e.g. catalog.align(vocab).categorical['category'].codes[:n_items]",
                options=("CategoryPopularity.categories",),
            )
        categories = np.asarray(self.categories)
        if categories.dtype.kind not in "iu" or categories.shape != (n_items,):
            raise ConfigError(
                f"CategoryPopularity: categories must be int codes [n_items={n_items}], got "
                f"dtype {categories.dtype} and shape {categories.shape}",
                options=("CategoryPopularity.categories",),
            )
        if len(categories) and categories.min() < 0:
            raise ConfigError(
                "CategoryPopularity: category codes must be >= 0 (0: unknown)",
                options=("CategoryPopularity.categories",),
            )
        counts = self._fit_common(train, n_items)
        categories = categories.astype(np.int64)
        n_codes = int(categories.max(initial=0)) + 1
        clicked = counts > 0
        # mean clicks of the clicked items of each category; unknown (0) gets no prior
        total = np.bincount(categories[clicked], weights=counts[clicked], minlength=n_codes)
        n_clicked = np.bincount(categories[clicked], minlength=n_codes)
        category_mean = np.divide(
            total, n_clicked, out=np.zeros(n_codes), where=n_clicked > 0
        )  # [n_codes]
        category_mean[0] = 0.0
        prior = np.where(clicked, counts.astype(np.float64), category_mean[categories])
        self.categories_ = categories  # [n_items]
        self.n_codes_ = n_codes
        self.item_prior_ = prior  # [n_items], p_j
        prior_rank = np.unique(prior, return_inverse=True)[1]
        self.prior_rank_ = prior_rank.astype(np.float64)  # [n_items], 0 .. R - 1
        self.n_prior_ranks_ = int(prior_rank.max(initial=0)) + 1  # R
        exact32 = n_codes * self.n_prior_ranks_ <= 1 << 24
        self.score_dtype_ = np.float32 if exact32 else np.float64
        return self

    def category_affinity(self, samples: Samples) -> np.ndarray:
        """``a_s(c)`` for every sample and category code, float64 ``[B, n_codes]``."""
        self._check_fitted()
        check_samples(samples, self.n_items_)
        row, pos = prefix_rows(samples)
        weight = 1.0 / (samples.lengths[row] - pos + 1)  # last click 1, then 1/2, ...
        code = self.categories_[samples.items]
        affinity = np.zeros((len(samples), self.n_codes_))
        np.add.at(affinity, (row, code), weight)
        affinity[:, 0] = 0.0  # an unknown category says nothing about the session
        return affinity

    def scores(self, samples: Samples) -> np.ndarray:
        affinity = self.category_affinity(samples)  # [B, n_codes]
        # per-row dense rank of the affinities, equal within a relative 1e-9
        order = np.argsort(affinity, axis=1, kind="stable")
        ranked = np.take_along_axis(affinity, order, axis=1)
        step = np.diff(ranked, axis=1) > 1e-9 * np.maximum(np.abs(ranked[:, 1:]), 1e-300)
        dense_sorted = np.concatenate(
            [np.zeros((len(samples), 1), dtype=np.int64), np.cumsum(step, axis=1)], axis=1
        )
        dense = np.empty_like(dense_sorted)
        np.put_along_axis(dense, order, dense_sorted, axis=1)  # [B, n_codes]
        out = dense[:, self.categories_] * float(self.n_prior_ranks_) + self.prior_rank_
        return out.astype(self.score_dtype_)  # [B, n_items]
