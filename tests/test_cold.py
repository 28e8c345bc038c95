"""Cold-start evaluation: held-out items, the long tail, per-group metrics and the
category-popularity baseline, on hand-computed examples, then property tests, then the
real yoochoose-categories data (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import shared_dataset
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionrec.data.cold import ColdSplit, hold_out_items, longtail_mask
from sessionrec.data.dataset import SessionDataset
from sessionrec.data.sessions import Samples, Sessions
from sessionrec.data.vocab import ItemVocab
from sessionrec.errors import ConfigError, EmptyDataError
from sessionrec.evaluate.baselines import CategoryPopularity, item_click_counts
from sessionrec.evaluate.evaluation import evaluate_recommender


def hand_dataset() -> SessionDataset:
    """Items 0..5 (raw ids 100..105); item 5 has no training click."""
    train = Sessions.from_lists(
        [[0, 1, 2], [1, 3], [3, 1, 3, 4], [2, 4], [0, 3]], times=[10.0, 20.0, 30.0, 40.0, 50.0]
    )
    test = Samples.from_lists([[0], [0, 1], [5]], [1, 2, 3])
    return SessionDataset(train, test, ItemVocab(np.arange(100, 106)), {"source": "hand"})


# -- hold_out_items: by hand ----------------------------------------------------------------
def test_hold_out_items_by_hand():
    dataset = hand_dataset()
    # 5 clicked items (0..4), fraction 0.4 -> round(2.0) = 2 items; with seed 1 numpy's
    # default_rng(1).choice([0, 1, 2, 3, 4], 2, replace=False) draws items 1 and 2
    assert sorted(np.random.default_rng(1).choice(np.arange(5), 2, replace=False)) == [1, 2]
    split = hold_out_items(dataset, 0.4, seed=1)
    assert isinstance(split, ColdSplit)
    np.testing.assert_array_equal(split.cold, [False, True, True, False, False, False])
    assert split.n_cold == 2 and split.fraction == 0.4 and split.seed == 1
    # without items 1 and 2: [0], [3], [3, 3, 4], [4], [0, 3]; sessions of 1 click go
    assert split.dataset.train.to_lists() == [[3, 3, 4], [0, 3]]
    np.testing.assert_array_equal(split.dataset.train.times, [30.0, 50.0])
    # vocabulary and test samples are the very same objects
    assert split.dataset.vocab is dataset.vocab and split.dataset.test is dataset.test
    assert split.dataset.meta["source"] == "hand"
    assert split.dataset.meta["cold_items"] == {
        "fraction": 0.4,
        "seed": 1,
        "n_cold": 2,
        "n_eligible": 5,
        "train_clicks_removed": 5,
        "train_sessions_dropped": 3,
        "recent_sessions_kept_whole": 0,
    }
    # the original dataset is untouched
    assert dataset.train.to_lists()[0] == [0, 1, 2]


def test_recent_sessions_keep_their_held_out_clicks_for_validation():
    from sessionrec.data.dataset import validation_split

    dataset = hand_dataset()
    # items 1 and 2 held out (as above); keep_recent 0.5: the first guess round(5 * 0.5)
    # = 2 latest sessions ([2, 4] and [0, 3]) stay whole; of the others only [3, 3, 4]
    # keeps 2 clicks, so 3 sessions are left and round(3 * 0.5) = 2: a fixed point
    split = hold_out_items(dataset, 0.4, seed=1, keep_recent=0.5)
    assert split.dataset.train.to_lists() == [[3, 3, 4], [2, 4], [0, 3]]
    assert split.dataset.meta["cold_items"]["train_clicks_removed"] == 4
    assert split.dataset.meta["cold_items"]["recent_sessions_kept_whole"] == 2
    # exactly the sessions a trainer with valid_fraction 0.5 validates on
    fit, valid = validation_split(split.dataset.train, 0.5)
    assert fit.to_lists() == [[3, 3, 4]]
    assert not split.cold[fit.items].any()
    assert valid.targets.tolist() == [4, 3]  # [2] -> 4, [0] -> 3
    for bad in (1.0, -0.1):
        with pytest.raises(ConfigError, match="keep_recent"):
            hold_out_items(dataset, 0.4, seed=1, keep_recent=bad)


def test_recent_sessions_match_the_validation_split_on_real_sizes():
    from sessionrec.data.dataset import validation_split
    from sessionrec.data.protocol import prepare

    dataset = prepare(Path(__file__).resolve().parents[1] / "data" / "synthetic" / "clicks.csv")
    split = hold_out_items(dataset, 0.1, seed=0, keep_recent=0.1)
    fit, valid = validation_split(split.dataset.train, 0.1)
    assert not split.cold[fit.items].any()  # the held-out items never train
    assert split.cold[valid.targets].sum() > 20  # and validation asks for them
    assert len(fit) + split.dataset.meta["cold_items"]["recent_sessions_kept_whole"] == len(
        split.dataset.train
    )


def test_hold_out_items_never_picks_unclicked_items():
    dataset = hand_dataset()
    for seed in range(20):
        split = hold_out_items(dataset, 0.9, seed)  # round(4.5) = 4 (half to even)
        assert split.n_cold == 4 and not split.cold[5]


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5, float("nan"), True, "0.1"])
def test_hold_out_items_refuses_fractions_outside_0_1(fraction):
    with pytest.raises(ConfigError, match="fraction"):
        hold_out_items(hand_dataset(), fraction, 0)


def test_hold_out_items_refuses_a_fraction_that_holds_out_nothing():
    with pytest.raises(ConfigError, match="holds out no item"):
        hold_out_items(hand_dataset(), 0.05, 0)  # round(0.25) = 0


def test_hold_out_items_needs_clicked_items():
    empty = SessionDataset(
        Sessions.from_lists([]), Samples.from_lists([[0]], [1]), ItemVocab(np.arange(2))
    )
    with pytest.raises(EmptyDataError, match="no item has a training click"):
        hold_out_items(empty, 0.5, 0)


# -- hold_out_items: properties -------------------------------------------------------------
sessions_strategy = st.lists(st.lists(st.integers(0, 11), min_size=1, max_size=8), max_size=25)


@settings(max_examples=150, deadline=None)
@given(sessions_strategy, st.floats(0.01, 0.99), st.integers(0, 2**32 - 1))
def test_hold_out_items_properties(sequences, fraction, seed):
    n_items = 12
    train = Sessions.from_lists(sequences, times=np.arange(float(len(sequences))))
    test = Samples.from_lists([[0, 1], [2]], [3, 11])
    dataset = SessionDataset(train, test, ItemVocab(np.arange(n_items)))
    counts = np.bincount(train.items, minlength=n_items)
    n_eligible = int((counts > 0).sum())
    if n_eligible == 0:
        with pytest.raises(EmptyDataError):
            hold_out_items(dataset, fraction, seed)
        return
    if round(fraction * n_eligible) == 0:
        with pytest.raises(ConfigError):
            hold_out_items(dataset, fraction, seed)
        return
    split = hold_out_items(dataset, fraction, seed)
    cold = split.cold
    # the chosen items: round(fraction * n_eligible) clicked items
    assert cold.dtype == bool and cold.shape == (n_items,)
    assert split.n_cold == round(fraction * n_eligible)
    assert not (cold & (counts == 0)).any()
    # no held-out item left in training
    assert not cold[split.dataset.train.items].any()
    # the other clicks kept in order; sessions of < 2 clicks dropped; times follow
    expected = [
        (t, kept)
        for t, s in enumerate(sequences)
        if len(kept := [i for i in s if not cold[i]]) >= 2
    ]
    assert split.dataset.train.to_lists() == [kept for _, kept in expected]
    np.testing.assert_array_equal(split.dataset.train.times, [float(t) for t, _ in expected])
    # test untouched, vocabulary the same
    assert split.dataset.test is test and split.dataset.vocab is dataset.vocab
    # deterministic per seed
    again = hold_out_items(dataset, fraction, seed)
    np.testing.assert_array_equal(again.cold, cold)
    assert again.dataset.train.to_lists() == split.dataset.train.to_lists()


# -- longtail_mask ----------------------------------------------------------------------------
def test_longtail_is_the_warm_items_at_or_below_the_median_count():
    counts = np.array([9, 1, 0, 4, 4, 7, 2, 30])
    cold = np.array([True, False, False, False, False, False, False, False])
    # warm: items 1, 3, 4, 5, 6, 7 (item 0 cold, item 2 unclicked); counts 1, 4, 4, 7, 2, 30
    # median of [1, 2, 4, 4, 7, 30] = (4 + 4) / 2 = 4 -> counts <= 4: items 1, 3, 4, 6
    np.testing.assert_array_equal(
        longtail_mask(counts, cold), [False, True, False, True, True, False, True, False]
    )


def test_longtail_takes_every_tie_at_the_median():
    counts = np.array([1, 1, 1, 1, 5])  # median 1: four of five warm items
    np.testing.assert_array_equal(
        longtail_mask(counts, np.zeros(5, dtype=bool)), [True, True, True, True, False]
    )
    counts = np.array([1, 2, 3, 4])  # even: median 2.5 -> exactly half
    np.testing.assert_array_equal(
        longtail_mask(counts, np.zeros(4, dtype=bool)), [True, True, False, False]
    )


def test_longtail_without_warm_items_is_empty_and_shapes_are_checked():
    assert not longtail_mask(np.array([0, 3]), np.array([False, True])).any()
    with pytest.raises(ConfigError, match="shapes"):
        longtail_mask(np.array([1, 2, 3]), np.array([False, True]))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 20), min_size=1, max_size=40), st.integers(0, 2**32 - 1))
def test_longtail_holds_at_least_half_of_the_warm_items(counts, seed):
    counts = np.array(counts)
    cold = np.random.default_rng(seed).random(len(counts)) < 0.3
    mask = longtail_mask(counts, cold)
    warm = ~cold & (counts > 0)
    assert not (mask & ~warm).any()
    assert 2 * mask.sum() >= warm.sum()
    if mask.any() and (warm & ~mask).any():  # every long-tail item clicked at most
        assert counts[mask].max() < counts[warm & ~mask].min()  # any other warm item


# -- per-group metrics through the evaluation loop -------------------------------------------
class _Ranked:
    """Ranks items in a fixed order for every prefix: ``order[0]`` first."""

    def __init__(self, order: list[int]) -> None:
        self.order = order

    def scores(self, samples: Samples) -> np.ndarray:
        n = len(self.order)
        out = np.empty(n, dtype=np.float32)
        out[self.order] = np.arange(n, 0, -1)
        return np.broadcast_to(out, (len(samples), n)).copy()


def test_evaluate_recommender_reports_cold_and_warm_groups():
    # ranking 3, 0, 1, 2: targets 1, 2, 3, 0 have ranks 3, 4, 1, 2
    samples = Samples.from_lists([[0], [1], [2], [3]], [1, 2, 3, 0])
    cold = np.array([False, False, True, True])
    result = evaluate_recommender(
        _Ranked([3, 0, 1, 2]), samples, 4, ks=(1, 3), batch_size=3, groups={"cold": cold}
    )
    assert result["hr@3"] == pytest.approx(75.0)  # ranks 3, 1, 2 within 3
    # cold targets 2, 3: ranks 4, 1
    assert result["cold_n_samples"] == 2
    assert result["cold_hr@1"] == pytest.approx(50.0)
    assert result["cold_hr@3"] == pytest.approx(50.0)
    assert result["cold_mrr@3"] == pytest.approx(50.0)
    assert result["cold_ndcg@3"] == pytest.approx(50.0)


# -- category popularity -----------------------------------------------------------------------
def test_category_popularity_scores_by_hand():
    # items 0..5, categories [1, 1, 2, 2, 0, 2]; training counts [3, 1, 2, 0, 4, 0]
    train = Sessions.from_lists([[0, 0, 1], [0, 2, 2], [4, 4, 4, 4]])
    model = CategoryPopularity(np.array([1, 1, 2, 2, 0, 2])).fit(train, 6)
    # priors: clicked items their counts; items 3 and 5 (category 2, no clicks) the mean
    # count of the clicked items of category 2 (item 2: 2) = 2
    np.testing.assert_allclose(model.item_prior_, [3, 1, 2, 2, 4, 2])
    # prefix [0, 2, 4]: weights 1/3, 1/2, 1 -> a(1) = 1/3, a(2) = 1/2, unknown ignored
    # prefix [2, 0]: a(2) = 1/2, a(1) = 1
    samples = Samples.from_lists([[0, 2, 4], [2, 0]], [1, 3])
    np.testing.assert_allclose(model.category_affinity(samples), [[0, 1 / 3, 1 / 2], [0, 1, 1 / 2]])
    scores = model.scores(samples)
    assert scores.dtype == np.float32 and scores.shape == (2, 6)
    # distinct priors 1 < 2 < 3 < 4 -> ranks item 0: 2, 1: 0, 2: 1, 3: 1, 4: 3, 5: 1; R = 4
    # row 0: affinity ranks c0: 0, c1: 1, c2: 2 -> score = rank(a) * 4 + rank(p)
    np.testing.assert_array_equal(scores[0], [1 * 4 + 2, 1 * 4 + 0, 2 * 4 + 1, 9, 0 * 4 + 3, 9])
    # row 1: c0: 0, c2: 1, c1: 2
    np.testing.assert_array_equal(scores[1], [2 * 4 + 2, 8, 1 * 4 + 1, 5, 3, 5])
    # so row 0 ranks category 2 first (items 2, 3, 5 tied on prior: by index), then
    # category 1 by count (0, 1), then the unknown item 4
    assert np.argsort(-scores[0], kind="stable").tolist() == [2, 3, 5, 0, 1, 4]


def test_category_popularity_ranks_lexicographically_not_by_a_weighted_sum():
    # a(1) = 1/2 + 1/3 = 5/6 < a(2) = 1; item 0 (category 1) has 1000 clicks, item 2
    # (category 2) one: the session's favourite category still wins
    train = Sessions.from_lists([[0] * 1000, [1, 2]])
    model = CategoryPopularity(np.array([1, 1, 2])).fit(train, 3)
    scores = model.scores(Samples.from_lists([[0, 1, 2]], [0]))
    assert np.argsort(-scores[0], kind="stable").tolist() == [2, 0, 1]


def test_category_popularity_treats_equal_sums_of_weights_as_ties():
    # items 0, 1, 2: category 1; item 3: category 2; item 4: category 3
    model = CategoryPopularity(np.array([1, 1, 1, 2, 3])).fit(Sessions.from_lists([[4, 4]]), 5)
    # prefix of 6 clicks: weights 1/6, 1/5, 1/4, 1/3, 1/2, 1 (the last click)
    prefix = [0, 4, 4, 1, 2, 3]  # categories 1, 3, 3, 1, 1, 2
    samples = Samples.from_lists([prefix], [0])
    affinity = model.category_affinity(samples)[0]
    # a(1) = 1/6 + 1/3 + 1/2 = 1 = a(2) (float sums may differ in the last bit)
    assert affinity[1] == pytest.approx(1.0) and affinity[2] == 1.0
    assert affinity[3] == pytest.approx(1 / 5 + 1 / 4)
    scores = model.scores(samples)[0]
    # categories 1 and 2 tie; items 0..3 have the same prior (0: no clicked item in
    # their categories), so they tie too, and item 4 (category 3, 2 clicks) comes last
    assert scores[0] == scores[1] == scores[2] == scores[3] > scores[4]


def test_category_popularity_recommends_unclicked_items_of_the_session_category():
    # item 2 (category 2) was never clicked; a category-2 session still ranks it
    train = Sessions.from_lists([[0, 1], [1, 3, 3]])
    model = CategoryPopularity(np.array([1, 2, 2, 1])).fit(train, 4)
    np.testing.assert_allclose(model.item_prior_, [1, 2, 2, 2])  # mean of category 2: 2
    scores = model.scores(Samples.from_lists([[1]], [2]))[0]
    assert scores[2] == scores[1] > scores[3] > scores[0]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 9), min_size=1, max_size=6), min_size=1, max_size=15),
    st.lists(st.lists(st.integers(0, 9), min_size=1, max_size=6), min_size=1, max_size=8),
    st.lists(st.integers(0, 3), min_size=10, max_size=10),
)
def test_category_popularity_matches_a_loop_reference(train_lists, prefixes, categories):
    categories = np.array(categories)
    train = Sessions.from_lists(train_lists)
    samples = Samples.from_lists(prefixes, [0] * len(prefixes))
    model = CategoryPopularity(categories).fit(train, 10)
    scores = model.scores(samples)
    counts = np.bincount(train.items, minlength=10)
    for b, prefix in enumerate(prefixes):
        n = len(prefix)
        affinity = {c: 0.0 for c in range(4)}
        for t, item in enumerate(prefix, start=1):
            if categories[item]:
                affinity[categories[item]] += 1.0 / (n - t + 1)
        prior = []
        for j in range(10):
            same = [counts[i] for i in range(10) if categories[i] == categories[j] and counts[i]]
            unknown_or_none = categories[j] == 0 or not same
            prior.append(counts[j] if counts[j] else (0.0 if unknown_or_none else np.mean(same)))
        key = [(round(affinity[categories[j]], 9), round(prior[j], 9)) for j in range(10)]
        expected = sorted(range(10), key=lambda j: (-key[j][0], -key[j][1], j))
        assert np.lexsort((np.arange(10), -scores[b])).tolist() == expected


def test_category_popularity_checks_its_inputs():
    train = Sessions.from_lists([[0, 1]])
    with pytest.raises(ConfigError, match="needs categories"):
        CategoryPopularity().fit(train, 2)
    with pytest.raises(ConfigError, match=r"n_items=3"):
        CategoryPopularity(np.array([1, 2])).fit(train, 3)
    with pytest.raises(ConfigError, match="int codes"):
        CategoryPopularity(np.array([1.0, 2.0])).fit(train, 2)
    with pytest.raises(ConfigError, match=">= 0"):
        CategoryPopularity(np.array([1, -1])).fit(train, 2)
    with pytest.raises(ConfigError, match="not fitted"):
        CategoryPopularity(np.array([1, 1])).scores(Samples.from_lists([[0]], [1]))


# -- the real data ---------------------------------------------------------------------------
def test_cold_split_and_category_popularity_on_yoochoose_categories():
    from sessionrec.data.benchmarks import (
        load_yoochoose_categories,
        yoochoose_categories_catalog,
    )

    folder = shared_dataset("yoochoose-categories")
    dataset = load_yoochoose_categories(folder)
    split = hold_out_items(dataset, 0.1, seed=0)
    assert split.n_cold == round(0.1 * 5397) == 540
    assert not split.cold[split.dataset.train.items].any()
    catalog = yoochoose_categories_catalog(folder).align(dataset.vocab)
    codes = catalog.categorical["category"].codes[: dataset.n_items]
    counts = item_click_counts(split.dataset.train, dataset.n_items)
    groups = {
        "cold": split.cold,
        "warm": ~split.cold,
        "longtail": longtail_mask(counts, split.cold),
    }
    model = CategoryPopularity(codes).fit(split.dataset.train, dataset.n_items)
    result = evaluate_recommender(
        model, dataset.test.select(np.arange(3000)), dataset.n_items, groups=groups
    )
    assert result["cold_n_samples"] + result["warm_n_samples"] == 3000
    assert result["cold_n_samples"] > 0 and result["longtail_n_samples"] > 0
    assert result["warm_hr@20"] > 0
