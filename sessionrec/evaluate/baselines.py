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

This module imports numpy and scipy only.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import scipy.sparse as sp

from sessionrec.data.sessions import Samples, Sessions
from sessionrec.errors import ConfigError

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


# -- shared helpers ---------------------------------------------------------------------
def item_click_counts(sessions: Sessions, n_items: int) -> np.ndarray:
    """Training clicks per item, ``int64 [n_items]`` (an item's *support*)."""
    if sessions.n_clicks and (sessions.items.min() < 0 or sessions.items.max() >= n_items):
        raise ConfigError(
            f"training sessions hold item indices in [{int(sessions.items.min())}, "
            f"{int(sessions.items.max())}] but n_items={n_items}; indices must be in "
            f"[0, n_items)"
        )
    return np.bincount(sessions.items, minlength=n_items).astype(np.int64)


def _check_samples(samples: Samples, n_items: int) -> None:
    if len(samples.items) and (samples.items.min() < 0 or samples.items.max() >= n_items):
        raise ConfigError(
            f"samples hold item indices in [{int(samples.items.min())}, "
            f"{int(samples.items.max())}] but the baseline was fitted with n_items={n_items}"
        )


def _dense_rank(values: np.ndarray) -> np.ndarray:
    """``0`` for the smallest distinct value, ``1`` for the next, ...; equal values tie.

    Used as a float32-exact stand-in for a monotone score (``n_items < 2**24``).
    """
    return np.unique(values, return_inverse=True)[1].astype(np.float32)


def _prefix_rows(samples: Samples) -> tuple[np.ndarray, np.ndarray]:
    """``row`` (sample index) and 1-based ``pos`` of every prefix click."""
    lengths = samples.lengths
    row = np.repeat(np.arange(len(samples), dtype=np.int64), lengths)
    pos = np.arange(len(samples.items), dtype=np.int64) - samples.offsets[row] + 1
    return row, pos


def _distinct_last(
    row: np.ndarray, item: np.ndarray, pos: np.ndarray, n_items: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distinct ``(row, item)`` pairs with the last position and the count of each.

    Returns ``(row, item, last_pos, count)``, sorted by row then item.
    """
    key = row * n_items + item
    order = np.lexsort((pos, key))
    key_sorted = key[order]
    is_last = np.ones(len(key_sorted), dtype=bool)
    is_last[:-1] = key_sorted[1:] != key_sorted[:-1]
    last = order[is_last]
    starts = np.flatnonzero(np.r_[True, is_last[:-1]]) if len(key_sorted) else last
    count = np.flatnonzero(is_last) - starts + 1
    return row[last], item[last], pos[last], count


# -- base class -------------------------------------------------------------------------
class Baseline:
    """Common interface: ``fit(train, n_items) -> self``, ``scores(samples) -> [B, N]``."""

    name = "baseline"

    def fit(self, train: Sessions, n_items: int) -> Baseline:  # pragma: no cover
        raise NotImplementedError

    def scores(self, samples: Samples) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters and their current values."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {n: getattr(self, n) for n in names}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_items_"):
            raise ConfigError(
                f"{type(self).__name__} is not fitted; call fit(train_sessions, n_items) first"
            )

    def _fit_common(self, train: Sessions, n_items: int) -> np.ndarray:
        if n_items < 1:
            raise ConfigError(f"n_items must be >= 1, got {n_items}")
        counts = item_click_counts(train, n_items)
        self.n_items_ = int(n_items)
        self.item_counts_ = counts
        return counts


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
            raise ConfigError(f"SessionPop: top_n must be an int >= 0, got {self.top_n!r}")
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
        _check_samples(samples, self.n_items_)
        out = np.broadcast_to(self.popularity_bonus_, (len(samples), self.n_items_)).copy()
        row, pos = _prefix_rows(samples)
        d_row, d_item, _, count = _distinct_last(row, samples.items, pos, self.n_items_)
        out[d_row, d_item] += (count * self.session_weight_).astype(np.float32)
        return out


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
            raise ConfigError(f"ItemKNN: n_sims must be an int >= 1, got {self.n_sims!r}")
        if self.lmbd < 0 or not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(
                f"ItemKNN: need lmbd >= 0 and 0 <= alpha <= 1, got lmbd={self.lmbd}, "
                f"alpha={self.alpha}"
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
        _check_samples(samples, self.n_items_)
        last = samples.items[samples.offsets[1:] - 1]  # [B]
        return self.similarities_[last].toarray().astype(np.float32)


# -- session-based nearest neighbours -------------------------------------------------
def _position_weight(name: str, i: np.ndarray, length: np.ndarray) -> np.ndarray:
    """V-SKNN's weight of the click at 1-based position ``i`` of a session of ``length``.

    session-rec's definitions, including ``linear``'s cut on ``i <= 10`` (counted from the
    start of the session, not its end).
    """
    i = i.astype(np.float64)
    length = length.astype(np.float64)
    if name == "same":
        return np.ones_like(i)
    if name == "div":
        return i / length
    if name == "quadratic":
        return (i / length) ** 2
    if name == "log":
        return 1.0 / np.log10(length - i + 1.7)
    if name == "linear":
        return np.where(i <= 10, 1.0 - 0.1 * (length - i), 0.0)
    raise ConfigError(f"weighting must be one of {sorted(_WEIGHTINGS)}, got {name!r}")


def _step_decay(name: str, step: np.ndarray) -> np.ndarray:
    """V-SKNN's decay of a neighbour reached through the click ``step`` from the end (1 = last)."""
    step = step.astype(np.float64)
    if name == "same":
        return np.ones_like(step)
    if name == "div":
        return 1.0 / step
    if name == "quadratic":
        return 1.0 / (step * step)
    if name == "log":
        return 1.0 / np.log10(step + 1.7)
    if name == "linear":
        return np.where(step <= 100, 1.0 - 0.1 * step, 0.0)
    raise ConfigError(f"weighting_score must be one of {sorted(_WEIGHTINGS)}, got {name!r}")


_WEIGHTINGS = ("same", "div", "linear", "quadratic", "log")
_SIMILARITIES = ("vec", "cosine", "jaccard")


class _SessionKNN(Baseline):
    """Session-based kNN with V-SKNN's weights; SKNN is the unweighted special case.

    For a current session (prefix) :math:`s` of length :math:`L` (its last
    ``last_n_clicks`` clicks, if set) and a training session :math:`n`:

    1. *Candidates*: the training sessions sharing an item with :math:`s`; only the
       ``sample_size`` most recent are kept (``0``: all).
    2. *Similarity* with position weights :math:`w_i` of the distinct items of :math:`s`
       (the weight of an item's last click at 1-based position :math:`p`, e.g.
       ``quadratic``: :math:`(p/L)^2`, ``same``: 1):

       - ``vec``: :math:`\\mathrm{sim} = \\sum_{i \\in s \\cap n} w_i / |s|`
       - ``cosine``: :math:`\\sum_{i \\in s \\cap n} w_i / (\\sqrt{\\sum_{i \\in s} w_i^2}\\sqrt{|n|})`
       - ``jaccard`` (``weighting="same"`` only): :math:`|s \\cap n| / |s \\cup n|`

       with :math:`|\\cdot|` counting distinct items. The ``k`` most similar candidates
       with :math:`\\mathrm{sim} > 0` are the neighbours (ties: the more recent first).
    3. *Scores*: with :math:`d_n` the ``weighting_score`` decay of the step (1 = the last
       click) of the most recent click of :math:`s` that :math:`n` contains, and
       :math:`\\mathrm{idf}_j = \\log(N_{sessions} / supp_j)`,

       .. math::

           \\hat r_{s,j} = \\sum_{n \\ni j} \\mathrm{sim}(s, n)\\, d_n\\,
                          (1 + \\mathrm{idf\\_weighting} \\cdot \\mathrm{idf}_j)

       Items of the current session are scored too unless ``remind=False``.

    The batch is computed with two sparse products (prefix items x item->session
    incidence) for the candidates and similarities, a per-row selection of the recent
    sample and of the top ``k``, and one product (neighbours x session->item incidence)
    for the scores: no Python loop over sessions or samples.
    """

    def __init__(
        self,
        k: int,
        sample_size: int,
        similarity: str,
        weighting: str,
        weighting_score: str,
        idf_weighting: float,
        remind: bool,
        last_n_clicks: int | None,
    ) -> None:
        self.k = k
        self.sample_size = sample_size
        self.similarity = similarity
        self.weighting = weighting
        self.weighting_score = weighting_score
        self.idf_weighting = idf_weighting
        self.remind = remind
        self.last_n_clicks = last_n_clicks

    # ---- fit --------------------------------------------------------------------------
    def _validate(self) -> None:
        name = type(self).__name__
        if not (isinstance(self.k, (int, np.integer)) and self.k >= 1):
            raise ConfigError(f"{name}: k must be an int >= 1, got {self.k!r}")
        if not (isinstance(self.sample_size, (int, np.integer)) and self.sample_size >= 0):
            raise ConfigError(
                f"{name}: sample_size must be an int >= 0 (0 = all candidates), "
                f"got {self.sample_size!r}"
            )
        if self.similarity not in _SIMILARITIES:
            raise ConfigError(
                f"{name}: similarity must be one of {list(_SIMILARITIES)}, got {self.similarity!r}"
            )
        for what in ("weighting", "weighting_score"):
            if getattr(self, what) not in _WEIGHTINGS:
                raise ConfigError(
                    f"{name}: {what} must be one of {list(_WEIGHTINGS)}, "
                    f"got {getattr(self, what)!r}"
                )
        if self.similarity == "jaccard" and self.weighting != "same":
            raise ConfigError(
                f"{name}: similarity='jaccard' is unweighted; use weighting='same' "
                f"(got {self.weighting!r}) or similarity='vec'/'cosine'"
            )
        if (
            not isinstance(self.idf_weighting, (int, float, np.number))
            or not np.isfinite(self.idf_weighting)
            or self.idf_weighting < 0
        ):
            raise ConfigError(f"{name}: idf_weighting must be >= 0, got {self.idf_weighting!r}")
        if self.last_n_clicks is not None and not (
            isinstance(self.last_n_clicks, (int, np.integer)) and self.last_n_clicks >= 1
        ):
            raise ConfigError(
                f"{name}: last_n_clicks must be None or an int >= 1, got {self.last_n_clicks!r}"
            )

    def fit(self, train: Sessions, n_items: int) -> _SessionKNN:
        self._validate()
        counts = self._fit_common(train, n_items)
        n_sessions = len(train)
        # Sessions are relabelled oldest -> newest, so that a larger column index is a
        # more recent session and "the most recent candidates" are the last of a row.
        order = train.recency_order()
        rank = np.empty(n_sessions, dtype=np.int64)
        rank[order] = np.arange(n_sessions, dtype=np.int64)
        rows = rank[np.repeat(np.arange(n_sessions, dtype=np.int64), train.lengths)]
        incidence = sp.csr_matrix(
            (np.ones(train.n_clicks, dtype=np.float64), (rows, train.items)),
            shape=(n_sessions, n_items),
        )
        incidence.sum_duplicates()
        incidence.data[:] = 1.0
        incidence.sort_indices()
        self.session_items_ = incidence  # [n_sessions, n_items] binary, recency order
        self.item_sessions_ = incidence.T.tocsr()  # [n_items, n_sessions]
        self.item_sessions_.sort_indices()
        self.session_lengths_ = np.diff(incidence.indptr).astype(np.float64)  # distinct items
        # sorted (session, item) keys: membership tests for the neighbours' steps
        self.session_item_keys_ = (
            np.repeat(np.arange(n_sessions, dtype=np.int64), np.diff(incidence.indptr)) * n_items
            + incidence.indices
        )
        with np.errstate(divide="ignore"):
            idf = np.where(counts > 0, np.log(n_sessions / np.maximum(counts, 1)), 0.0)
        self.idf_ = idf  # [n_items]
        self.item_factor_ = 1.0 + float(self.idf_weighting) * idf  # [n_items]
        self.session_order_ = order  # column c of the incidence is session order[c]
        return self

    # ---- scores -------------------------------------------------------------------------
    def scores(self, samples: Samples) -> np.ndarray:
        self._check_fitted()
        _check_samples(samples, self.n_items_)
        n_items = self.n_items_
        b = len(samples)
        lengths = samples.lengths  # [B]
        window = lengths if self.last_n_clicks is None else np.minimum(lengths, self.last_n_clicks)
        row, pos = _prefix_rows(samples)
        d_row, d_item, d_last, _ = _distinct_last(row, samples.items, pos, n_items)
        # position within the last-n window (1-based); <= 0: only clicked before the window
        d_tpos = d_last - (lengths - window)[d_row]
        in_window = d_tpos >= 1
        weight = np.zeros(len(d_row))
        weight[in_window] = self._click_weights(d_tpos[in_window], window[d_row[in_window]])
        n_current = np.bincount(d_row[in_window], minlength=b).astype(np.float64)  # |s|

        # 1. candidates: every session sharing any prefix item (session-rec accumulates
        #    them over all clicks of the session); similarity numerators by a second
        #    product with shifted (strictly positive) weights so both have one pattern.
        shift = 1.0 + max(0.0, -float(weight.min(initial=0.0)))
        q_bin = sp.csr_matrix((np.ones(len(d_row)), (d_row, d_item)), shape=(b, n_items))
        q_enc = sp.csr_matrix((weight + shift, (d_row, d_item)), shape=(b, n_items))
        overlap = q_bin @ self.item_sessions_  # [B, n_sessions]: |prefix ∩ n|
        encoded = q_enc @ self.item_sessions_  # sum over prefix ∩ n of (w + shift)
        overlap.sort_indices()
        encoded.sort_indices()
        if not (
            np.array_equal(overlap.indptr, encoded.indptr)
            and np.array_equal(overlap.indices, encoded.indices)
        ):  # pragma: no cover - both products have strictly positive terms
            raise RuntimeError("internal error: candidate patterns differ")
        indptr = overlap.indptr
        cand_row = np.repeat(np.arange(b, dtype=np.int64), np.diff(indptr))
        cand_col = overlap.indices.astype(np.int64)  # recency rank, ascending within a row
        # keep the sample_size most recent candidates of each row (the last ones)
        if self.sample_size:
            first_kept = np.maximum(indptr[1:] - self.sample_size, indptr[:-1])
            keep = np.arange(len(cand_col)) >= first_kept[cand_row]
        else:
            keep = np.ones(len(cand_col), dtype=bool)
        cand_row = cand_row[keep]
        cand_col = cand_col[keep]
        numerator = encoded.data[keep] - shift * overlap.data[keep]

        # 2. similarity, then the k most similar (ties: the more recent first)
        if self.similarity == "vec":
            sim = numerator / np.maximum(n_current[cand_row], 1.0)
        elif self.similarity == "cosine":
            sq = np.bincount(d_row[in_window], weights=weight[in_window] ** 2, minlength=b)
            denom = np.sqrt(sq[cand_row]) * np.sqrt(self.session_lengths_[cand_col])
            sim = np.divide(numerator, denom, out=np.zeros_like(numerator), where=denom > 0)
        else:  # jaccard, unweighted: numerator = |s ∩ n|
            union = n_current[cand_row] + self.session_lengths_[cand_col] - numerator
            sim = np.divide(numerator, union, out=np.zeros_like(numerator), where=union > 0)
        sim = sim * self._session_decay(cand_col)
        positive = sim > 0
        cand_row, cand_col, sim = cand_row[positive], cand_col[positive], sim[positive]
        order = np.lexsort((-cand_col, -sim, cand_row))
        row_sorted = cand_row[order]
        row_start = np.searchsorted(row_sorted, np.arange(b))
        top = order[(np.arange(len(order)) - row_start[row_sorted]) < self.k]
        nb_row, nb_col, nb_sim = cand_row[top], cand_col[top], sim[top]
        return self._score_neighbours(
            b, nb_row, nb_col, nb_sim, d_row, d_item, d_tpos, in_window, window
        )

    def _click_weights(self, pos: np.ndarray, length: np.ndarray) -> np.ndarray:
        """Weight of a current-session item whose last click is at 1-based ``pos``."""
        return _position_weight(self.weighting, pos, length)

    def _session_decay(self, col: np.ndarray) -> np.ndarray | float:
        """Factor on the similarity of the candidates ``col`` (recency ranks): none here."""
        return 1.0

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
        """Item scores ``float32 [B, n_items]`` from the neighbours ``(nb_row, nb_col)``
        with similarities ``nb_sim`` and the distinct prefix items ``(d_row, d_item)``."""
        n_items = self.n_items_
        # 3. step of each neighbour: the most recent window click it contains
        step = self._neighbour_steps(nb_row, nb_col, d_row, d_item, d_tpos, in_window, window)
        decay = np.where(step > 0, _step_decay(self.weighting_score, np.maximum(step, 1)), 0.0)
        neighbours = sp.csr_matrix(
            (nb_sim * decay, (nb_row, nb_col)), shape=(b, len(self.session_lengths_))
        )
        item_scores = (neighbours @ self.session_items_).tocoo()  # [B, n_items]
        out = np.zeros((b, n_items), dtype=np.float32)
        out[item_scores.row, item_scores.col] = (
            item_scores.data * self.item_factor_[item_scores.col]
        ).astype(np.float32)
        if not self.remind:
            out[d_row[in_window], d_item[in_window]] = 0.0
        return out

    def _neighbour_steps(
        self,
        nb_row: np.ndarray,
        nb_col: np.ndarray,
        d_row: np.ndarray,
        d_item: np.ndarray,
        d_tpos: np.ndarray,
        in_window: np.ndarray,
        window: np.ndarray,
    ) -> np.ndarray:
        """``window - p + 1`` for the largest window position ``p`` whose item the
        neighbour holds (``0`` if none): session-rec's ``step``."""
        n_items = self.n_items_
        b = len(window)
        # window items of each row, latest first
        w_row, w_item, w_pos = d_row[in_window], d_item[in_window], d_tpos[in_window]
        order = np.lexsort((-w_pos, w_row))
        w_item, w_pos = w_item[order], w_pos[order]
        per_row = np.bincount(w_row, minlength=b)
        row_ptr = np.zeros(b + 1, dtype=np.int64)
        np.cumsum(per_row, out=row_ptr[1:])
        # every (neighbour, window item) pair, neighbour by neighbour
        n_pairs = per_row[nb_row]
        pair_nb = np.repeat(np.arange(len(nb_row), dtype=np.int64), n_pairs)
        pair_start = np.zeros(len(nb_row) + 1, dtype=np.int64)
        np.cumsum(n_pairs, out=pair_start[1:])
        within = np.arange(pair_start[-1], dtype=np.int64) - pair_start[pair_nb]
        idx = row_ptr[nb_row[pair_nb]] + within
        keys = nb_col[pair_nb] * n_items + w_item[idx]
        found = np.searchsorted(self.session_item_keys_, keys)
        found = np.minimum(found, len(self.session_item_keys_) - 1)
        present = self.session_item_keys_[found] == keys
        hit_nb = pair_nb[present]
        first = np.ones(len(hit_nb), dtype=bool)
        first[1:] = hit_nb[1:] != hit_nb[:-1]  # latest window item held by the neighbour
        step = np.zeros(len(nb_row), dtype=np.int64)
        step[hit_nb[first]] = window[nb_row[hit_nb[first]]] - w_pos[idx[present][first]] + 1
        return step


class SKNN(_SessionKNN):
    """SKNN (session-based kNN, Jannach & Ludewig 2017; session-rec ``ContextKNN``).

    Neighbours are the ``k`` most similar among the ``sample_size`` most recent training
    sessions sharing an item with the current session; similarity of the item *sets*
    (``cosine``: :math:`|s \\cap n| / \\sqrt{|s||n|}`, or ``jaccard``); an item's score is
    the sum of the similarities of the neighbours that contain it. (session-rec's
    ``cosine`` computes :math:`|s \\cap n|\\sqrt{|s|}/\\sqrt{|n|}` by operator precedence:
    the current session's constant factor changes no ranking.)

    Defaults: chosen on the validation split of the Diginetica benchmark (the latest 10%
    of training sessions; highest HR@20 + MRR@20 over ``k`` in {50, 100, 200, 300, 500,
    1000, 1500}, ``sample_size`` in {500, 1000, 2500, 5000, 10000}, cosine or jaccard):
    ``k=200``, ``sample_size=500``, ``similarity="cosine"``. session-rec's own Diginetica
    configuration is ``k=100``, ``sample_size=500``.
    """

    name = "sknn"

    def __init__(self, k: int = 200, sample_size: int = 500, similarity: str = "cosine") -> None:
        super().__init__(
            k=k,
            sample_size=sample_size,
            similarity=similarity,
            weighting="same",
            weighting_score="same",
            idf_weighting=0.0,
            remind=True,
            last_n_clicks=None,
        )

    def get_params(self) -> dict[str, Any]:
        return {"k": self.k, "sample_size": self.sample_size, "similarity": self.similarity}


class VSKNN(_SessionKNN):
    """V-SKNN (vector-multiplication session kNN; session-rec ``VMContextKNN``).

    SKNN with the current session as a real-valued vector: later clicks weigh more
    (``weighting``), a neighbour's contribution decays with how far back the most recent
    click it shares lies (``weighting_score``), and rare items are boosted by IDF
    (``idf_weighting``). See :class:`_SessionKNN` for the equations.

    Defaults: chosen on the validation split of the Diginetica benchmark (the latest 10%
    of training sessions; highest HR@20 + MRR@20, one parameter at a time from
    session-rec's tuned Diginetica configuration ``k=500``, ``sample_size=5000``,
    ``weighting="quadratic"``, ``weighting_score="div"``, ``idf_weighting=5``, then
    combinations of the best): ``k=500``, ``sample_size=500``, ``weighting="div"``,
    ``weighting_score="div"``, ``idf_weighting=5``, ``similarity="vec"``.
    """

    name = "vsknn"

    def __init__(
        self,
        k: int = 500,
        sample_size: int = 500,
        similarity: str = "vec",
        weighting: str = "div",
        weighting_score: str = "div",
        idf_weighting: float = 5.0,
        remind: bool = True,
        last_n_clicks: int | None = None,
    ) -> None:
        super().__init__(
            k=k,
            sample_size=sample_size,
            similarity=similarity,
            weighting=weighting,
            weighting_score=weighting_score,
            idf_weighting=idf_weighting,
            remind=remind,
            last_n_clicks=last_n_clicks,
        )


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
        raise ConfigError(f"{name}: {what} must be None (off) or a number > 0, got {value!r}")


def _group_max(values: np.ndarray, group_start: np.ndarray) -> np.ndarray:
    """Maximum of ``values`` over consecutive non-empty groups starting at ``group_start``."""
    if len(group_start) == 0:
        return np.zeros(0, dtype=values.dtype)
    return np.maximum.reduceat(values, group_start)


class STAN(_SessionKNN):
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
            raise ConfigError(f"{name}: sessions_per_day must be a number > 0, got None")
        _optional_positive(name, "sessions_per_day", self.sessions_per_day)
        if self.lambda_idf is not None and (
            isinstance(self.lambda_idf, bool)
            or not isinstance(self.lambda_idf, (int, float, np.number))
            or not np.isfinite(self.lambda_idf)
            or self.lambda_idf < 0
        ):
            raise ConfigError(
                f"{name}: lambda_idf must be None (off) or >= 0, got {self.lambda_idf!r}"
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
        d_row, d_item, d_last, _ = _distinct_last(rank[row], train.items, pos, n_items)
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


# -- sequential rules ---------------------------------------------------------------------
class SequentialRules(Baseline):
    """SR: sequential rules (Kamehkhosh et al. 2017; session-rec
    ``algorithms/baselines/sr.py``, ``SequentialRules``).

    A rule :math:`a \\to b` is weighted by how often :math:`b` follows :math:`a` within
    ``steps`` clicks of a training session, closer pairs counting more:

    .. math::

        w(a \\to b) = \\sum_{\\text{sessions}} \\sum_{t} \\sum_{i=1}^{\\min(steps, t)}
            [x_{t-i} = a,\\ x_t = b]\\; f(i)

    with :math:`f` the ``weighting`` (``div``: :math:`1/i`, ``quadratic``: :math:`1/i^2`,
    ``same``: 1, ``log``: :math:`1/\\log_{10}(i + 1.7)`, ``linear``:
    :math:`1 - 0.1 i` for :math:`i \\le 100`, else 0; :math:`a = b` included, as in
    session-rec). ``idf_weight=1`` multiplies each term by :math:`\\mathrm{idf}_a`,
    ``idf_weight=2`` adds it, with :math:`\\mathrm{idf}` = :math:`\\log(N_{sessions} /
    supp_a)` min-max scaled to [0, 1]. Each item keeps its ``pruning`` heaviest rules
    (``pruning >= 1``; a fraction ``0 < pruning < 1`` drops that share; ``0`` keeps all;
    ties: the rule first seen in the training data first). A prefix is scored by the
    rules of its last click: :math:`\\hat r_{s,j} = w(x_L \\to j)`. (session-rec divides
    the row by its maximum; that changes no ranking when the maximum is positive, and we
    do not reproduce its reversal of the order when ``linear`` makes all weights negative.)

    Defaults: session-rec's class defaults ``steps=10``, ``weighting="div"``,
    ``pruning=20``; on the validation split of the Diginetica benchmark (the latest 10% of
    training sessions) they beat session-rec's Diginetica configuration ``steps=20``,
    ``weighting="quadratic"`` (HR@20 / MRR@20 38.72 / 13.87 against 38.10 / 13.64), and
    on its test set they reproduce the 40.35 / 14.13 measured with session-rec's own code.
    """

    name = "sr"

    def __init__(
        self,
        steps: int = 10,
        weighting: str = "div",
        pruning: float = 20,
        idf_weight: int = 0,
    ) -> None:
        self.steps = steps
        self.weighting = weighting
        self.pruning = pruning
        self.idf_weight = idf_weight

    def _validate(self) -> None:
        if not (
            isinstance(self.steps, (int, np.integer))
            and not isinstance(self.steps, bool)
            and self.steps >= 1
        ):
            raise ConfigError(f"SequentialRules: steps must be an int >= 1, got {self.steps!r}")
        if self.weighting not in _WEIGHTINGS:
            raise ConfigError(
                f"SequentialRules: weighting must be one of {list(_WEIGHTINGS)}, "
                f"got {self.weighting!r}"
            )
        if (
            isinstance(self.pruning, bool)
            or not isinstance(self.pruning, (int, float, np.number))
            or not self.pruning >= 0
            or (self.pruning >= 1 and float(self.pruning) != int(self.pruning))
        ):
            raise ConfigError(
                f"SequentialRules: pruning must be 0 (keep all), a fraction in (0, 1) or an "
                f"int >= 1, got {self.pruning!r}"
            )
        if self.idf_weight not in (0, 1, 2) or isinstance(self.idf_weight, float):
            raise ConfigError(
                f"SequentialRules: idf_weight must be 0 (off), 1 (multiply) or 2 (add), "
                f"got {self.idf_weight!r}"
            )

    def fit(self, train: Sessions, n_items: int) -> SequentialRules:
        self._validate()
        counts = self._fit_common(train, n_items)
        n_sessions = len(train)
        steps = int(self.steps)
        items = train.items.astype(np.int64)
        row = np.repeat(np.arange(n_sessions, dtype=np.int64), train.lengths)
        pos = np.arange(train.n_clicks, dtype=np.int64) - train.offsets[row]  # 0-based
        idf = np.zeros(n_items)
        if self.idf_weight:
            seen = counts > 0
            raw = np.log(n_sessions / counts[seen])
            span = raw.max() - raw.min()
            idf[seen] = (raw - raw.min()) / span if span > 0 else 0.0
        # every (click t, distance i) pair, in session-rec's order: click, then distance
        prev_parts, cur_parts, weight_parts, seq_parts = [], [], [], []
        for i in range(1, steps + 1):  # steps iterations, each vectorised over all clicks
            click = np.flatnonzero(pos >= i)
            if len(click) == 0:
                break
            prev = items[click - i]
            w = np.broadcast_to(_step_decay(self.weighting, np.array([i])), (len(click),))
            if self.idf_weight == 1:
                w = w * idf[prev]
            elif self.idf_weight == 2:
                w = w + idf[prev]
            prev_parts.append(prev)
            cur_parts.append(items[click])
            weight_parts.append(np.asarray(w, dtype=np.float64))
            seq_parts.append(click * steps + (i - 1))
        if prev_parts:
            prev = np.concatenate(prev_parts)
            cur = np.concatenate(cur_parts)
            weight = np.concatenate(weight_parts)
            seq = np.concatenate(seq_parts)
        else:
            prev = cur = seq = np.zeros(0, dtype=np.int64)
            weight = np.zeros(0)
        # sum per rule in training order; remember when each rule was first seen
        key = prev * n_items + cur
        order = np.lexsort((seq, key))
        key, weight, seq = key[order], weight[order], seq[order]
        first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else key
        rule_key = key[first]
        rule_weight = np.add.reduceat(weight, first) if len(key) else weight
        rule_seen = seq[first]
        rule_prev, rule_cur = rule_key // n_items, rule_key % n_items
        # pruning: the heaviest rules of each item, ties by first appearance
        if self.pruning:
            per_prev = np.bincount(rule_prev, minlength=n_items)
            if self.pruning < 1:
                keep_n = per_prev - (per_prev * float(self.pruning)).astype(np.int64)
            else:
                keep_n = np.full(n_items, int(self.pruning))
            order = np.lexsort((rule_seen, -rule_weight, rule_prev))
            prev_sorted = rule_prev[order]
            start = np.searchsorted(prev_sorted, np.arange(n_items))
            within = np.arange(len(order)) - start[prev_sorted]
            kept = order[within < keep_n[prev_sorted]]
            rule_prev, rule_cur, rule_weight = rule_prev[kept], rule_cur[kept], rule_weight[kept]
        self.rules_ = sp.csr_matrix(
            (rule_weight, (rule_prev, rule_cur)), shape=(n_items, n_items)
        )  # [n_items, n_items]: w(a -> b)
        self.idf_ = idf
        return self

    def scores(self, samples: Samples) -> np.ndarray:
        self._check_fitted()
        _check_samples(samples, self.n_items_)
        last = samples.items[samples.offsets[1:] - 1]  # [B]
        return self.rules_[last].toarray().astype(np.float32)


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
                "e.g. catalog.align(vocab).categorical['category'].codes[:n_items]"
            )
        categories = np.asarray(self.categories)
        if categories.dtype.kind not in "iu" or categories.shape != (n_items,):
            raise ConfigError(
                f"CategoryPopularity: categories must be int codes [n_items={n_items}], got "
                f"dtype {categories.dtype} and shape {categories.shape}"
            )
        if len(categories) and categories.min() < 0:
            raise ConfigError("CategoryPopularity: category codes must be >= 0 (0: unknown)")
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
        _check_samples(samples, self.n_items_)
        row, pos = _prefix_rows(samples)
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
        raise ConfigError(f"unknown baseline {method!r}; known: {', '.join(BASELINES)}") from None
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ConfigError(
            f"{method}: unknown parameter(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(allowed) if allowed else '(none)'}"
        )
    return cls(**params)
