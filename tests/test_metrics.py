"""Metrics over the full item set, pinned against hand-computed examples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sessionrec.data.sessions import Samples
from sessionrec.errors import ConfigError
from sessionrec.evaluate.evaluation import evaluate_recommender
from sessionrec.evaluate.metrics import (
    MetricAccumulator,
    hit_rate_at_k,
    item_coverage_at_k,
    mrr_at_k,
    ndcg_at_k,
    popularity_bias_at_k,
    popularity_percentiles,
    target_ranks,
    top_k,
)


# -- top_k --------------------------------------------------------------------------------
def test_top_k_orders_by_score_best_first():
    scores = np.array([[0.1, 0.7, 0.3, 0.9], [5.0, -1.0, 2.0, 0.0]])
    np.testing.assert_array_equal(top_k(scores, 2), [[3, 1], [0, 2]])
    np.testing.assert_array_equal(top_k(scores, 4), [[3, 1, 2, 0], [0, 2, 3, 1]])


def test_top_k_ties_go_to_the_lower_index():
    np.testing.assert_array_equal(top_k(np.array([[1.0, 1.0, 1.0, 1.0]]), 2), [[0, 1]])
    # the tie straddles the cut: item 1 is above it, then 0 before 2 and 3
    np.testing.assert_array_equal(top_k(np.array([[0.3, 0.9, 0.3, 0.3]]), 2), [[1, 0]])
    np.testing.assert_array_equal(top_k(np.array([[0.3, 0.9, 0.3, 0.3]]), 3), [[1, 0, 2]])
    # ties above the cut are ordered by index too
    np.testing.assert_array_equal(top_k(np.array([[0.0, 2.0, 1.0, 2.0]]), 3), [[1, 3, 2]])


def test_top_k_clips_k_to_the_catalogue_and_handles_k_zero():
    scores = np.array([[0.2, 0.1]])
    np.testing.assert_array_equal(top_k(scores, 5), [[0, 1]])
    assert top_k(scores, 0).shape == (1, 0)


@settings(max_examples=60, deadline=None)
@given(
    arrays(
        np.float32, st.tuples(st.integers(1, 5), st.integers(1, 30)), elements=st.integers(-3, 3)
    ),
    st.integers(1, 35),
)
def test_top_k_equals_a_stable_descending_sort(scores, k):
    """Small integer scores force many ties: the order must be (score desc, index asc)."""
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(top_k(scores, k), expected)


# -- ranks and accuracy -------------------------------------------------------------------
def test_target_ranks_are_one_based_and_zero_when_absent():
    topk = np.array([[3, 1, 2], [0, 4, 5], [7, 8, 9]])
    np.testing.assert_array_equal(target_ranks(topk, np.array([1, 0, 6])), [2, 1, 0])


def test_hit_rate_counts_ranks_within_k():
    ranks = np.array([1, 3, 0, 20, 21])
    assert hit_rate_at_k(ranks, 20) == pytest.approx(3 / 5)
    assert hit_rate_at_k(ranks, 2) == pytest.approx(1 / 5)
    assert hit_rate_at_k(np.array([], dtype=np.int64), 20) == 0.0


def test_mrr_is_the_mean_reciprocal_rank_with_zero_beyond_k():
    ranks = np.array([1, 2, 0, 4])
    assert mrr_at_k(ranks, 20) == pytest.approx((1 + 1 / 2 + 0 + 1 / 4) / 4)  # 0.4375
    assert mrr_at_k(ranks, 3) == pytest.approx((1 + 1 / 2) / 4)  # 0.375
    assert mrr_at_k(np.array([], dtype=np.int64), 20) == 0.0


def test_ndcg_with_one_relevant_item():
    ranks = np.array([1, 3, 0])
    # 1/log2(1+1) = 1, 1/log2(3+1) = 0.5
    assert ndcg_at_k(ranks, 20) == pytest.approx((1.0 + 0.5 + 0.0) / 3)
    assert ndcg_at_k(np.array([2]), 20) == pytest.approx(1 / math.log2(3))
    assert ndcg_at_k(ranks, 2) == pytest.approx(1 / 3)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 30), min_size=1, max_size=40), st.integers(1, 30))
def test_mrr_le_ndcg_le_hit_rate(ranks, k):
    ranks = np.array(ranks)
    mrr, ndcg, hr = mrr_at_k(ranks, k), ndcg_at_k(ranks, k), hit_rate_at_k(ranks, k)
    assert 0.0 <= mrr <= ndcg + 1e-12 <= hr + 2e-12 <= 1.0 + 2e-12
    assert hit_rate_at_k(ranks, k) <= hit_rate_at_k(ranks, k + 1)


# -- coverage and popularity ------------------------------------------------------------
def test_item_coverage_is_the_share_of_items_recommended_anywhere():
    topk = np.array([[0, 1], [1, 2]])
    assert item_coverage_at_k(topk, 5, 2) == pytest.approx(3 / 5)
    assert item_coverage_at_k(topk, 5, 1) == pytest.approx(2 / 5)


def test_popularity_percentiles_share_ranks_within_ties():
    # counts 1 < 3 = 3 < 5: ranks 0, (1+2)/2, (1+2)/2, 3 out of n-1 = 3
    np.testing.assert_allclose(popularity_percentiles(np.array([5, 1, 3, 3])), [100, 0, 50, 50])
    np.testing.assert_allclose(popularity_percentiles(np.array([7])), [100])
    np.testing.assert_allclose(popularity_percentiles(np.array([2, 2, 2])), [50, 50, 50])


def test_popularity_bias_is_the_mean_percentile_of_recommended_items():
    percentiles = np.array([100.0, 0.0, 50.0, 50.0])
    topk = np.array([[0, 2], [1, 0]])
    assert popularity_bias_at_k(topk, percentiles, 2) == pytest.approx((100 + 50 + 0 + 100) / 4)
    assert popularity_bias_at_k(topk, percentiles, 1) == pytest.approx((100 + 0) / 2)


# -- accumulator --------------------------------------------------------------------------
def test_metric_accumulator_reports_percent_over_batches():
    acc = MetricAccumulator(n_items=5, ks=(2, 1), item_counts=np.array([5, 1, 3, 3, 0]))
    acc.update(np.array([[0, 2, 4], [1, 3, 4]]), np.array([2, 4]))  # ranks 2, 0 (cut at 2)
    acc.update(np.array([[3, 0]]), np.array([3]))  # rank 1
    np.testing.assert_array_equal(acc.ranks, [2, 0, 1])
    result = acc.result()
    assert result["hr@1"] == pytest.approx(100 / 3)
    assert result["hr@2"] == pytest.approx(200 / 3)
    assert result["mrr@1"] == pytest.approx(100 / 3)
    assert result["mrr@2"] == pytest.approx(100 * (0.5 + 0 + 1) / 3)
    assert result["ndcg@2"] == pytest.approx(100 * (1 / math.log2(3) + 1) / 3)
    # items 0, 2, 1, 3 appear in the top-2 lists: 4 of 5
    assert result["coverage@2"] == pytest.approx(80.0)
    # percentiles of counts [5, 1, 3, 3, 0]: [100, 25, 62.5, 62.5, 0];
    # top-2 items 0, 2, 1, 3, 3, 0 -> (100 + 62.5 + 25 + 62.5 + 62.5 + 100) / 6
    assert result["popularity_bias@2"] == pytest.approx(412.5 / 6)
    assert result["n_samples"] == 3
    assert "hr@10" not in result


def test_metric_accumulator_without_item_counts_has_no_popularity_bias():
    acc = MetricAccumulator(n_items=3, ks=(1,))
    acc.update(np.array([[0], [1]]), np.array([0, 2]))
    result = acc.result()
    assert result["hr@1"] == pytest.approx(50.0)
    assert "popularity_bias@1" not in result


def test_metric_accumulator_reports_each_item_group_over_its_targets():
    groups = {
        "cold": np.array([True, True, False, False, False]),
        "tail": np.array([False, False, False, False, True]),
        "none": np.zeros(5, dtype=bool),
    }
    acc = MetricAccumulator(n_items=5, ks=(1, 2), groups=groups)
    acc.update(np.array([[0, 2], [1, 3]]), np.array([2, 1]))  # ranks 2, 1
    acc.update(np.array([[3, 0], [4, 2]]), np.array([0, 3]))  # ranks 2, 0
    result = acc.result()
    # cold targets 1, 0: ranks 1, 2
    assert result["cold_n_samples"] == 2
    assert result["cold_hr@1"] == pytest.approx(50.0)
    assert result["cold_hr@2"] == pytest.approx(100.0)
    assert result["cold_mrr@2"] == pytest.approx(100 * (1 + 0.5) / 2)
    assert result["cold_ndcg@2"] == pytest.approx(100 * (1 + 1 / math.log2(3)) / 2)
    # no target in "tail" or "none": zeros
    assert result["tail_n_samples"] == 0 and result["none_n_samples"] == 0
    assert result["tail_hr@2"] == 0.0 and result["none_mrr@1"] == 0.0
    assert result["n_samples"] == 4 and result["hr@2"] == pytest.approx(75.0)


def test_metric_accumulator_refuses_malformed_groups():
    with pytest.raises(ConfigError, match=r"groups\['cold'\].*bool mask over the 3 items"):
        MetricAccumulator(3, groups={"cold": np.array([1, 0, 1])})
    with pytest.raises(ConfigError, match=r"shape \(2,\)"):
        MetricAccumulator(3, groups={"cold": np.array([True, False])})


# -- the shared evaluation loop -------------------------------------------------------
class _FixedScorer:
    """Scores item ``(target + shift) % n`` highest, then the rest by index."""

    def __init__(self, n_items: int, shift: int) -> None:
        self.n_items, self.shift = n_items, shift

    def scores(self, samples: Samples) -> np.ndarray:
        out = np.zeros((len(samples), self.n_items), dtype=np.float32)
        out[np.arange(len(samples)), (samples.targets + self.shift) % self.n_items] = 1.0
        return out


def test_evaluate_recommender_batches_and_reports_percent():
    samples = Samples.from_lists([[0], [1, 2], [3], [0, 1]], [1, 2, 3, 4])
    perfect = evaluate_recommender(_FixedScorer(5, 0), samples, 5, ks=(1, 2), batch_size=3)
    assert perfect["hr@1"] == pytest.approx(100.0)
    assert perfect["mrr@2"] == pytest.approx(100.0)
    assert perfect["n_samples"] == 4
    # shift 1: item target+1 first, then ties (all 0) by index
    shifted = evaluate_recommender(_FixedScorer(5, 1), samples, 5, ks=(2,), batch_size=2)
    # top-2 lists: t=1 -> [2, 0]; t=2 -> [3, 0]; t=3 -> [4, 0]; t=4 -> [0, 1]
    assert shifted["hr@2"] == pytest.approx(0.0)
    assert shifted["coverage@2"] == pytest.approx(100 * 5 / 5)


def test_evaluate_recommender_rejects_wrong_score_shapes():
    samples = Samples.from_lists([[0]], [1])
    with pytest.raises(ConfigError, match=r"expected \(1, 4\)"):
        evaluate_recommender(_FixedScorer(3, 0), samples, 4)
    with pytest.raises(ConfigError, match="batch_size"):
        evaluate_recommender(_FixedScorer(3, 0), samples, 3, batch_size=0)


@settings(max_examples=80, deadline=None)
@given(
    st.integers(1, 6),
    st.integers(1, 40),
    st.integers(1, 45),
    st.integers(0, 2**31 - 1),
    st.sampled_from([0, 2, 5]),
)
def test_top_k_equals_a_stable_full_sort(rows, n, k, seed, levels):
    """Vectorised top_k == stable argsort of -score (ties to the lower index), ties or not."""
    rng = np.random.default_rng(seed)
    scores = rng.random((rows, n))
    if levels:  # few distinct values: many ties across the cut
        scores = np.round(scores * levels) / levels
    expected = np.argsort(-scores, axis=1, kind="stable")[:, : min(k, n)]
    np.testing.assert_array_equal(top_k(scores, k), expected)
