"""Sequence- and time-aware neighbourhoods: STAN and VSTAN."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from sessionrec.data.sessions import Sessions
from sessionrec.errors import ConfigError
from sessionrec.evaluate.baselines.base import distinct_last
from sessionrec.evaluate.baselines.session_knn import SessionKNNBase

__all__ = ["STAN", "VSTAN"]


# -- STAN and VSTAN -----------------------------------------------------------------------
_SECONDS_PER_DAY = 86400.0


def _optional_positive(name: str, what: str, value: Any) -> None:
    if value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.number))
        or not np.isfinite(value)
        or value <= 0
    ):
        raise ConfigError(
            f"{name}: {what} must be None (off) or a number > 0, got {value!r}",
            options=(f"{name}.{what}",),
        )


def _group_max(values: np.ndarray, group_start: np.ndarray) -> np.ndarray:
    """Maximum of ``values`` over consecutive non-empty groups starting at ``group_start``."""
    if len(group_start) == 0:
        return np.zeros(0, dtype=values.dtype)
    return np.maximum.reduceat(values, group_start)


class STAN(SessionKNNBase):
    """STAN (sequence- and time-aware neighbourhood; Garg et al., SIGIR 2019; session-rec
    ``algorithms/knn/stan.py``).

    SKNN (cosine, the ``sample_size`` most recent candidates, the ``k`` most similar) with
    three exponential decays. For the current session (prefix) :math:`s` of :math:`L`
    clicks (repeats counted) and a candidate training session :math:`n`:

    1. *Position in the current session* (``lambda_spw``): item :math:`i` of :math:`s`,
       last clicked at 1-based position :math:`p_i`, weighs
       :math:`w_i = \\exp((p_i - L) / \\lambda_{spw})`, and

       .. math::

           \\mathrm{sim}(s, n) = \\frac{\\sum_{i \\in s \\cap n} w_i}
               {\\sqrt{\\sum_{i \\in s} w_i^2}\\,\\sqrt{|n|}}
               \\exp\\!\\left(-\\frac{t_s - t_n}{\\lambda_{snh}}\\right)

       with :math:`|n|` the distinct items of :math:`n`.
    2. *Recency of the neighbour* (``lambda_snh``, in days): :math:`t_n` is the time of
       :math:`n` (:attr:`Sessions.times`, its last click, in seconds), :math:`t_s` that of
       the current session. Without timestamps a session's time is its position in the
       (time-ordered) training data, and one day is ``sessions_per_day`` positions: the
       decay is :math:`\\exp(-(N - 1 - \\mathrm{pos}_n) / (\\lambda_{snh}
       \\cdot sessions\\_per\\_day))`. :math:`t_s` is the same for all candidates of a
       prefix, so it scales a prefix's scores and changes no ranking: we use the newest
       training time.
    3. *Distance in the neighbour* (``lambda_inh``): with :math:`q_j` the last 1-based
       position of item :math:`j` among the clicks of :math:`n` and :math:`q^*` the last
       position in :math:`n` of any item of :math:`s`,

       .. math::

           \\hat r_{s,j} = \\sum_{n \\in N_k(s),\\, j \\in n} \\mathrm{sim}(s, n)
                           \\exp(-|q_j - q^*| / \\lambda_{inh})

    Items of the current session are scored too unless ``remind=False``. A decay set to
    ``None`` is off (factor 1), as in session-rec.

    Defaults: chosen on the validation split of the Diginetica benchmark (the latest 10%
    of training sessions; highest HR@20 + MRR@20, one parameter at a time from
    session-rec's tuned Diginetica configuration ``stan-mrr``: ``k=500``,
    ``sample_size=10000``, ``lambda_spw=1.225``, ``lambda_snh=20``, ``lambda_inh=4.9``;
    its ``stan-hr`` is ``k=100``, ``sample_size=5000``, ``lambda_spw=2.45``,
    ``lambda_snh=20``, ``lambda_inh=9.8``): ``stan-mrr`` with ``lambda_snh=80``.
    session-rec tuned ``lambda_snh`` on slices of about 25 days; over the 146 days of the
    benchmark's training data 20 days discounts old sessions too much (validation HR@20 /
    MRR@20: 47.81 / 17.47 at 20 days, 50.28 / 18.02 at 80, 49.71 / 17.87 with no decay).

    Args:
        sessions_per_day: how many positions make a day when the training sessions
            have no timestamps. The default is the Diginetica benchmark's: 186,670
            training sessions over the 146 days 2016-01-01 .. 2016-05-25 (1,279 per day).
            Ignored when :attr:`Sessions.times` is present.
    """

    name = "stan"

    def __init__(
        self,
        k: int = 500,
        sample_size: int = 10000,
        lambda_spw: float | None = 1.225,
        lambda_snh: float | None = 80.0,
        lambda_inh: float | None = 4.9,
        remind: bool = True,
        sessions_per_day: float = 1279.0,
    ) -> None:
        super().__init__(
            k=k,
            sample_size=sample_size,
            similarity="cosine",
            weighting="same",
            weighting_score="same",
            idf_weighting=0.0,
            remind=remind,
            last_n_clicks=None,
        )
        self.lambda_spw = lambda_spw
        self.lambda_snh = lambda_snh
        self.lambda_inh = lambda_inh
        self.sessions_per_day = sessions_per_day
        # VSTAN's extensions, off in STAN
        self.lambda_ipw: float | None = None
        self.lambda_idf: float | None = None

    def _validate(self) -> None:
        super()._validate()
        name = type(self).__name__
        for what in ("lambda_spw", "lambda_snh", "lambda_inh", "lambda_ipw"):
            _optional_positive(name, what, getattr(self, what))
        if self.sessions_per_day is None:
            raise ConfigError(
                f"{name}: sessions_per_day must be a number > 0, got None",
                options=(f"{name}.sessions_per_day",),
            )
        _optional_positive(name, "sessions_per_day", self.sessions_per_day)
        if self.lambda_idf is not None and (
            isinstance(self.lambda_idf, bool)
            or not isinstance(self.lambda_idf, (int, float, np.number))
            or not np.isfinite(self.lambda_idf)
            or self.lambda_idf < 0
        ):
            raise ConfigError(
                f"{name}: lambda_idf must be None (off) or >= 0, got {self.lambda_idf!r}",
                options=(f"{name}.lambda_idf",),
            )

    def fit(self, train: Sessions, n_items: int) -> STAN:
        super().fit(train, n_items)
        n_sessions = len(train)
        order = self.session_order_
        rank = np.empty(n_sessions, dtype=np.int64)
        rank[order] = np.arange(n_sessions, dtype=np.int64)
        # time of each recency rank, in days
        if train.times is None:
            days = np.arange(n_sessions, dtype=np.float64) / float(self.sessions_per_day)
        else:
            days = train.times[order] / _SECONDS_PER_DAY
        self.session_age_days_ = (days.max(initial=0.0) - days) if n_sessions else days
        # last 1-based click position of every distinct item of every session, aligned
        # with session_items_ (rows: recency rank, columns sorted by item)
        row = np.repeat(np.arange(n_sessions, dtype=np.int64), train.lengths)
        pos = np.arange(train.n_clicks, dtype=np.int64) - train.offsets[row] + 1
        d_row, d_item, d_last, _ = distinct_last(rank[row], train.items, pos, n_items)
        last_pos = sp.csr_matrix(
            (d_last.astype(np.float64), (d_row, d_item)), shape=(n_sessions, n_items)
        )
        last_pos.sort_indices()
        if not np.array_equal(last_pos.indices, self.session_items_.indices):
            raise RuntimeError("internal error: last positions misaligned")  # pragma: no cover
        self.session_last_pos_ = last_pos  # [n_sessions, n_items]
        self.item_factor_ = 1.0 + float(self.lambda_idf or 0.0) * self.idf_  # [n_items]
        return self

    def _click_weights(self, pos: np.ndarray, length: np.ndarray) -> np.ndarray:
        if not self.lambda_spw:
            return np.ones(len(pos))
        return np.exp((pos - length).astype(np.float64) / float(self.lambda_spw))

    def _session_decay(self, col: np.ndarray) -> np.ndarray | float:
        if self.lambda_snh is None:
            return 1.0
        return np.exp(-self.session_age_days_[col] / float(self.lambda_snh))

    def _score_neighbours(
        self,
        b: int,
        nb_row: np.ndarray,
        nb_col: np.ndarray,
        nb_sim: np.ndarray,
        d_row: np.ndarray,
        d_item: np.ndarray,
        d_tpos: np.ndarray,
        in_window: np.ndarray,
        window: np.ndarray,
    ) -> np.ndarray:
        n_items = self.n_items_
        last_pos = self.session_last_pos_
        # every (neighbour, distinct item of the neighbour) pair, neighbour by neighbour
        start = last_pos.indptr[nb_col]
        n_pairs = last_pos.indptr[nb_col + 1] - start
        pair_start = np.zeros(len(nb_col) + 1, dtype=np.int64)
        np.cumsum(n_pairs, out=pair_start[1:])
        pair_nb = np.repeat(np.arange(len(nb_col), dtype=np.int64), n_pairs)
        idx = start[pair_nb] + np.arange(pair_start[-1], dtype=np.int64) - pair_start[pair_nb]
        p_item = last_pos.indices[idx].astype(np.int64)
        p_last = last_pos.data[idx]  # q_j
        # which pairs hold an item of the current session (keys sorted by row, item)
        prefix_keys = d_row * n_items + d_item
        keys = nb_row[pair_nb] * n_items + p_item
        found = np.minimum(np.searchsorted(prefix_keys, keys), max(len(prefix_keys) - 1, 0))
        shared = prefix_keys[found] == keys if len(prefix_keys) else np.zeros(len(keys), bool)
        groups = pair_start[:-1]  # every neighbour holds >= 1 item
        q_star = _group_max(np.where(shared, p_last, 0.0), groups)  # [n_nb]
        weight = nb_sim[pair_nb]
        if self.lambda_inh is not None:
            weight = weight * np.exp(-np.abs(p_last - q_star[pair_nb]) / float(self.lambda_inh))
        if self.lambda_ipw is not None:
            # last position in the current session of an item the neighbour holds
            p_cur = _group_max(np.where(shared, d_tpos[found], 0), groups).astype(np.float64)
            length = window[nb_row].astype(np.float64)
            weight = weight * np.exp((p_cur - length) / float(self.lambda_ipw))[pair_nb]
        weight = weight * self.item_factor_[p_item]
        scores = sp.csr_matrix((weight, (nb_row[pair_nb], p_item)), shape=(b, n_items))
        out = scores.toarray().astype(np.float32)  # duplicates summed
        if not self.remind:
            out[d_row[in_window], d_item[in_window]] = 0.0
        return out


class VSTAN(STAN):
    """VSTAN (Ludewig et al., "Empirical analysis of session-based recommendation
    algorithms", UMUAI 2021; session-rec ``algorithms/knn/vstan.py``, ``VSKNN_STAN``).

    :class:`STAN` plus V-SKNN's two scoring terms: a neighbour's contribution decays with
    the position :math:`p^*` in the current session of the last click whose item the
    neighbour holds, :math:`\\exp((p^* - L) / \\lambda_{ipw})`, and items are boosted by
    :math:`1 + \\lambda_{idf}\\,\\mathrm{idf}_j` with
    :math:`\\mathrm{idf}_j = \\log(N_{sessions} / supp_j)` (:math:`supp_j` the training
    clicks on :math:`j`):

    .. math::

        \\hat r_{s,j} = \\sum_{n \\in N_k(s),\\, j \\in n} \\mathrm{sim}(s, n)
            e^{-|q_j - q^*| / \\lambda_{inh}}\\,(1 + \\lambda_{idf}\\,\\mathrm{idf}_j)\\,
            e^{(p^* - L) / \\lambda_{ipw}}

    The similarity is STAN's weighted cosine: session-rec's ``similarity`` parameter is
    accepted there but never read (``calc_similarity`` always calls ``cosine``).

    Defaults: chosen on the validation split of the Diginetica benchmark (as for
    :class:`STAN`, from session-rec's tuned Diginetica configuration ``vstan-mrr``:
    ``k=1500``, ``sample_size=5000``, ``lambda_spw=4.9``, ``lambda_snh=40``,
    ``lambda_inh=4.9``, ``lambda_ipw=1.225``, ``lambda_idf=10``; its ``vstan-hr`` is
    ``k=100``, ``sample_size=1000``, ``lambda_spw=4.9``, ``lambda_snh=80``,
    ``lambda_inh=9.8``, ``lambda_ipw=4.9``, ``lambda_idf=5``): ``vstan-mrr`` with
    ``lambda_snh=80`` and ``k=500`` (validation HR@20 / MRR@20 50.78 / 18.26; 49.95 /
    18.06 with session-rec's ``vstan-mrr``).
    """

    name = "vstan"

    def __init__(
        self,
        k: int = 500,
        sample_size: int = 5000,
        lambda_spw: float | None = 4.9,
        lambda_snh: float | None = 80.0,
        lambda_inh: float | None = 4.9,
        lambda_ipw: float | None = 1.225,
        lambda_idf: float | None = 10.0,
        remind: bool = True,
        sessions_per_day: float = 1279.0,
    ) -> None:
        super().__init__(
            k=k,
            sample_size=sample_size,
            lambda_spw=lambda_spw,
            lambda_snh=lambda_snh,
            lambda_inh=lambda_inh,
            remind=remind,
            sessions_per_day=sessions_per_day,
        )
        self.lambda_ipw = lambda_ipw
        self.lambda_idf = lambda_idf
