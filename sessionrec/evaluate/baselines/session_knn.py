"""Session-based nearest neighbours: SKNN and V-SKNN, their shared base class and
V-SKNN's position weights and step decays (the decays are also sequential rules')."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from sessionrec.data.sessions import Samples, Sessions
from sessionrec.errors import ConfigError
from sessionrec.evaluate.baselines.base import Baseline, check_samples, distinct_last, prefix_rows

__all__ = ["SessionKNNBase", "SKNN", "VSKNN", "WEIGHTINGS", "step_decay"]


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
    raise ConfigError(f"weighting must be one of {sorted(WEIGHTINGS)}, got {name!r}")


def step_decay(name: str, step: np.ndarray) -> np.ndarray:
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
    raise ConfigError(f"weighting_score must be one of {sorted(WEIGHTINGS)}, got {name!r}")


WEIGHTINGS = ("same", "div", "linear", "quadratic", "log")
_SIMILARITIES = ("vec", "cosine", "jaccard")


class SessionKNNBase(Baseline):
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
            raise ConfigError(
                f"{name}: k must be an int >= 1, got {self.k!r}", options=(f"{name}.k",)
            )
        if not (isinstance(self.sample_size, (int, np.integer)) and self.sample_size >= 0):
            raise ConfigError(
                f"{name}: sample_size must be an int >= 0 (0 = all candidates), "
                f"got {self.sample_size!r}",
                options=(f"{name}.sample_size",),
            )
        if self.similarity not in _SIMILARITIES:
            raise ConfigError(
                f"{name}: similarity must be one of {list(_SIMILARITIES)}, got {self.similarity!r}",
                options=(f"{name}.similarity",),
            )
        for what in ("weighting", "weighting_score"):
            if getattr(self, what) not in WEIGHTINGS:
                raise ConfigError(
                    f"{name}: {what} must be one of {list(WEIGHTINGS)}, got {getattr(self, what)!r}",
                    options=(f"{name}.{what}",),
                )
        if self.similarity == "jaccard" and self.weighting != "same":
            raise ConfigError(
                f"{name}: similarity='jaccard' is unweighted; use weighting='same' "
                f"(got {self.weighting!r}) or similarity='vec'/'cosine'",
                options=(f"{name}.weighting", f"{name}.similarity"),
            )
        if (
            not isinstance(self.idf_weighting, (int, float, np.number))
            or not np.isfinite(self.idf_weighting)
            or self.idf_weighting < 0
        ):
            raise ConfigError(
                f"{name}: idf_weighting must be >= 0, got {self.idf_weighting!r}",
                options=(f"{name}.idf_weighting",),
            )
        if self.last_n_clicks is not None and not (
            isinstance(self.last_n_clicks, (int, np.integer)) and self.last_n_clicks >= 1
        ):
            raise ConfigError(
                f"{name}: last_n_clicks must be None or an int >= 1, got {self.last_n_clicks!r}",
                options=(f"{name}.last_n_clicks",),
            )

    def fit(self, train: Sessions, n_items: int) -> SessionKNNBase:
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
        check_samples(samples, self.n_items_)
        n_items = self.n_items_
        b = len(samples)
        lengths = samples.lengths  # [B]
        window = lengths if self.last_n_clicks is None else np.minimum(lengths, self.last_n_clicks)
        row, pos = prefix_rows(samples)
        d_row, d_item, d_last, _ = distinct_last(row, samples.items, pos, n_items)
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
        decay = np.where(step > 0, step_decay(self.weighting_score, np.maximum(step, 1)), 0.0)
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


class SKNN(SessionKNNBase):
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


class VSKNN(SessionKNNBase):
    """V-SKNN (vector-multiplication session kNN; session-rec ``VMContextKNN``).

    SKNN with the current session as a real-valued vector: later clicks weigh more
    (``weighting``), a neighbour's contribution decays with how far back the most recent
    click it shares lies (``weighting_score``), and rare items are boosted by IDF
    (``idf_weighting``). See :class:`SessionKNNBase` for the equations.

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
