"""Spec of the embedded default data (sessionrec.data.synthetic)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from sessionrec.data.synthetic import (
    CLICKS_FILE,
    ITEMS_FILE,
    SyntheticConfig,
    _main,
    generate_catalog,
    generate_clicks,
    write_sample,
)
from sessionrec.errors import ConfigError

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "data" / "synthetic"
DAY_S = 86_400


@pytest.fixture(scope="module")
def default_clicks() -> pl.DataFrame:
    return generate_clicks()


@pytest.fixture(scope="module")
def default_catalog() -> pl.DataFrame:
    return generate_catalog()


# --- the predictors of the learnability check ------------------------------------------


def successor_vs_popularity(clicks: pl.DataFrame, test_days: int = 5, k: int = 20):
    """HR@k of "most frequent successor of the last item" and of POP on a time split.

    Training sessions end before the split, test sessions start after it (sessions that
    straddle it are dropped); single-click sessions are dropped; test targets must be
    items seen in training. Every consecutive pair ``(prev, next)`` of a test session is
    one sample. The successor list is filled up with popular items when short.

    Returns:
        ``(n_samples, successor_hr, pop_hr)``.
    """
    split = clicks["timestamp"].max() - test_days * DAY_S
    spans = clicks.group_by("session_id").agg(
        pl.col("timestamp").min().alias("t0"), pl.col("timestamp").max().alias("t1"), pl.len()
    )
    train_ids = spans.filter((pl.col("t1") < split) & (pl.col("len") > 1))["session_id"]
    test_ids = spans.filter((pl.col("t0") >= split) & (pl.col("len") > 1))["session_id"]
    pairs = (
        clicks.sort("session_id", "timestamp")
        .with_columns(pl.col("item_id").shift(1).over("session_id").alias("prev"))
        .drop_nulls("prev")
    )
    train = clicks.filter(pl.col("session_id").is_in(train_ids.implode()))
    pop = train.group_by("item_id").len().sort(["len", "item_id"], descending=[True, False])
    top_pop = pop["item_id"].head(k).to_list()
    counts = (
        pairs.filter(pl.col("session_id").is_in(train_ids.implode()))
        .group_by("prev", "item_id")
        .len()
        .sort(["prev", "len", "item_id"], descending=[False, True, False])
        .group_by("prev", maintain_order=True)
        .agg(pl.col("item_id").head(k))
    )
    successors = dict(zip(counts["prev"].to_list(), counts["item_id"].to_list(), strict=True))
    test = pairs.filter(
        pl.col("session_id").is_in(test_ids.implode())
        & pl.col("item_id").is_in(pop["item_id"].implode())
    )
    hits_successor = hits_pop = 0
    for prev, target in zip(test["prev"].to_list(), test["item_id"].to_list(), strict=True):
        rec = list(successors.get(prev, []))
        rec += [i for i in top_pop if i not in rec][: k - len(rec)]
        hits_successor += target in rec
        hits_pop += target in top_pop
    n = test.height
    return n, hits_successor / n, hits_pop / n


def test_the_predictor_helper_on_a_hand_made_clickstream():
    # train (day 0): 1 -> 2 twice, 1 -> 3 once; test (day 10): samples (1 -> 2), (2 -> 3)
    clicks = pl.DataFrame(
        {
            "session_id": [1, 1, 2, 2, 3, 3, 4, 4, 4],
            "item_id": [1, 2, 1, 2, 1, 3, 1, 2, 3],
            "timestamp": [0, 10, 20, 30, 40, 50, 10 * DAY_S, 10 * DAY_S + 5, 10 * DAY_S + 9],
        }
    )
    n, successor_hr, pop_hr = successor_vs_popularity(clicks, test_days=5, k=1)
    # successor of 1 is 2 (hit); 2 has no successor, falls back to POP top-1 = item 1 (miss)
    # POP top-1: items 1 and 2 both have 3 clicks, the tie goes to the lower id: 1 (2 misses)
    assert (n, successor_hr, pop_hr) == (2, 0.5, 0.0)


# --- config ------------------------------------------------------------------------------


def test_default_config_is_the_documented_one():
    cfg = SyntheticConfig()
    assert (cfg.n_sessions, cfg.n_items, cfg.n_categories, cfg.days, cfg.seed) == (
        4_000,
        1_000,
        20,
        30,
        0,
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n_sessions", -1),
        ("n_categories", 0),
        ("n_items", 39),  # fewer than 2 per category (20 categories)
        ("days", 0),
        ("cold_fraction", 0.5),
        ("p_follow", 1.5),
        ("p_follow", 0.95),  # with the other moves the sum exceeds 1
        ("mean_length", 0.5),
        ("median_gap_s", 0),
    ],
)
def test_bad_config_values_name_the_field(field, value):
    with pytest.raises(ConfigError, match=f"SyntheticConfig.{field}"):
        SyntheticConfig(**{field: value})


def test_unknown_keyword_is_a_config_error_listing_the_fields():
    with pytest.raises(ConfigError, match="no field.*n_session.*known fields"):
        generate_clicks(n_session=10)
    with pytest.raises(ConfigError, match="must be a SyntheticConfig"):
        generate_clicks({"n_sessions": 10})  # type: ignore[arg-type]


def test_keywords_override_a_config():
    cfg = SyntheticConfig(n_sessions=30, seed=4)
    assert_frame_equal(generate_clicks(cfg, days=3), generate_clicks(n_sessions=30, seed=4, days=3))


# --- schema and invariants ---------------------------------------------------------------


def test_schemas(default_clicks, default_catalog):
    assert default_clicks.schema == pl.Schema(
        {"session_id": pl.Int64, "item_id": pl.Int64, "timestamp": pl.Int64, "category": pl.String}
    )
    assert default_catalog.schema == pl.Schema(
        {"item_id": pl.Int64, "category": pl.String, "title": pl.String, "price": pl.Float64}
    )
    assert default_clicks.null_count().sum_horizontal().item() == 0
    assert default_catalog.null_count().sum_horizontal().item() == 0


def check_invariants(cfg: SyntheticConfig, clicks: pl.DataFrame, catalog: pl.DataFrame) -> None:
    # catalog: one row per item, raw ids are 5-6 digit numbers, positive prices
    assert catalog.height == cfg.n_items
    assert catalog["item_id"].is_unique().all()
    assert catalog["item_id"].is_sorted()
    assert catalog["item_id"].min() >= 10_000 and catalog["item_id"].max() <= 999_999
    assert (catalog["price"] > 0).all()
    assert catalog["category"].n_unique() == cfg.n_categories
    # clicks: sessions 1..n_sessions, in order of their first click
    assert clicks["session_id"].unique().sort().to_list() == list(range(1, cfg.n_sessions + 1))
    assert clicks["session_id"].is_sorted()
    starts = clicks.group_by("session_id", maintain_order=True).agg(pl.col("timestamp").first())
    assert starts["timestamp"].is_sorted()
    lengths = clicks.group_by("session_id").len()["len"]
    assert (lengths <= cfg.max_length).all()
    # strictly increasing time within a session, gaps of 1 s .. max_gap_s
    gaps = clicks.select(pl.col("timestamp").diff().over("session_id")).drop_nulls().to_series()
    assert gaps.is_between(1, cfg.max_gap_s).all()
    end = cfg.start_unix + cfg.days * DAY_S + cfg.max_length * cfg.max_gap_s
    assert clicks["timestamp"].is_between(cfg.start_unix, end, closed="left").all()
    # every click is of a catalog item, with that item's category
    joined = clicks.join(catalog, on="item_id", how="left", suffix="_catalog")
    assert joined["category_catalog"].null_count() == 0
    assert (joined["category"] == joined["category_catalog"]).all()
    # cold items: at least round(cold_fraction * n_items) catalog items are never clicked
    never_clicked = catalog.join(clicks, on="item_id", how="anti")
    assert never_clicked.height >= round(cfg.cold_fraction * cfg.n_items)


def test_invariants_of_the_default_data(default_clicks, default_catalog):
    check_invariants(SyntheticConfig(), default_clicks, default_catalog)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_sessions=st.integers(0, 60),
    n_categories=st.integers(1, 6),
    extra_items=st.integers(0, 120),
    days=st.integers(1, 10),
    seed=st.integers(0, 2**32 - 1),
    cold_fraction=st.sampled_from([0.0, 0.05, 0.3]),
    series_size=st.integers(1, 10),
    max_length=st.integers(1, 8),
)
def test_invariants_hold_for_any_small_config(
    n_sessions, n_categories, extra_items, days, seed, cold_fraction, series_size, max_length
):
    cfg = SyntheticConfig(
        n_sessions=n_sessions,
        n_items=2 * n_categories + extra_items,
        n_categories=n_categories,
        days=days,
        seed=seed,
        cold_fraction=cold_fraction,
        series_size=series_size,
        max_length=max_length,
    )
    check_invariants(cfg, generate_clicks(cfg), generate_catalog(cfg))


# --- determinism -------------------------------------------------------------------------


def test_same_seed_same_data_bit_for_bit(default_clicks, default_catalog):
    assert_frame_equal(generate_clicks(), default_clicks)
    assert_frame_equal(generate_catalog(), default_catalog)


def test_another_seed_gives_other_data(default_clicks, default_catalog):
    assert not generate_clicks(seed=1).equals(default_clicks)
    assert not generate_catalog(seed=1).equals(default_catalog)


def test_catalog_does_not_depend_on_the_clickstream_size(default_catalog):
    assert_frame_equal(generate_catalog(n_sessions=7, days=2), default_catalog)


def test_days_change_the_times_but_not_the_clicked_items(default_clicks):
    other = generate_clicks(days=3)

    # sessions are renumbered by start time, so compare the multiset of sessions
    def sessions(df: pl.DataFrame) -> list[list[int]]:
        return sorted(df.group_by("session_id").agg("item_id")["item_id"].to_list())

    assert sessions(other) == sessions(default_clicks)
    assert other["timestamp"].max() < default_clicks["timestamp"].max()


# --- the structure a model can learn -----------------------------------------------------


def test_cold_items_exist_in_the_catalog_only(default_clicks, default_catalog):
    never_clicked = default_catalog.join(default_clicks, on="item_id", how="anti")
    assert never_clicked.height >= 50  # 5% of 1,000
    assert never_clicked.height <= 80  # cold by design, plus a few unlucky tail items
    assert set(never_clicked["category"]) <= set(default_clicks["category"])


def test_popularity_is_skewed(default_clicks):
    counts = default_clicks.group_by("item_id").len()["len"].sort(descending=True)
    top_5_percent = counts.head(len(counts) // 20).sum() / counts.sum()
    assert top_5_percent > 0.15  # uniform popularity would give 0.05
    assert counts[0] > 10 * counts.mean()


def test_sessions_are_focused_on_one_or_two_categories(default_clicks):
    per_session = default_clicks.group_by("session_id").agg(
        pl.col("category").n_unique().alias("categories"), pl.len()
    )
    long = per_session.filter(pl.col("len") >= 4)
    # 20 categories: random clicks would almost never keep a session in 2 categories
    assert (long["categories"] <= 2).mean() > 0.8


def test_repeat_clicks_happen(default_clicks):
    repeats = default_clicks.group_by("session_id").agg(
        (pl.len() - pl.col("item_id").n_unique()).alias("repeats")
    )
    assert (repeats["repeats"] > 0).sum() > 100


def test_gaps_are_seconds_to_minutes(default_clicks):
    gaps = default_clicks.select(pl.col("timestamp").diff().over("session_id")).drop_nulls()
    gaps = gaps.to_series()
    assert 20 <= gaps.median() <= 80
    assert gaps.quantile(0.9) > 100


def test_titles_carry_category_and_series_words(default_catalog):
    tokens = default_catalog["title"].str.split(" ")
    assert tokens.list.len().is_between(3, 5).all()
    # the first word names a series: one category per series word
    firsts = default_catalog.with_columns(tokens.list.first().alias("series_word"))
    per_word = firsts.group_by("series_word").agg(pl.col("category").n_unique())
    assert (per_word["category"] == 1).all()
    assert per_word.height < default_catalog.height  # series hold several items


@pytest.mark.parametrize("seed", [0, 1])
def test_last_item_successors_beat_popularity_twice_over(seed):
    n, successor_hr, pop_hr = successor_vs_popularity(generate_clicks(seed=seed))
    assert n > 1_000
    assert successor_hr >= 2 * pop_hr
    assert successor_hr > 0.4


# --- the shipped sample ------------------------------------------------------------------


def test_shipped_sample_is_what_the_documented_command_writes(tmp_path):
    if not (SAMPLE_DIR / CLICKS_FILE).exists():
        pytest.fail(f"{SAMPLE_DIR / CLICKS_FILE} is missing: run the command in its README")
    assert _main(["--out", str(tmp_path)]) == 0  # python -m sessionrec.data.synthetic --out
    for name in (CLICKS_FILE, ITEMS_FILE):
        assert_frame_equal(pl.read_csv(tmp_path / name), pl.read_csv(SAMPLE_DIR / name))
    readme = (SAMPLE_DIR / "README.md").read_text()
    assert "python -m sessionrec.data.synthetic --out data/synthetic" in readme


def test_shipped_sample_is_small():
    total = sum((SAMPLE_DIR / name).stat().st_size for name in (CLICKS_FILE, ITEMS_FILE))
    assert total < 600_000


def test_write_sample_round_trips_through_csv(tmp_path):
    cfg = SyntheticConfig(n_sessions=50, n_items=100, n_categories=4, seed=3)
    clicks_path, items_path = write_sample(tmp_path / "new", cfg)
    assert_frame_equal(pl.read_csv(clicks_path), generate_clicks(cfg))
    assert_frame_equal(pl.read_csv(items_path), generate_catalog(cfg))


def test_cli_rejects_a_bad_value(tmp_path, capsys):
    with pytest.raises(SystemExit):
        _main(["--out", str(tmp_path), "--n-items", "3"])
    assert "SyntheticConfig.n_items" in capsys.readouterr().err


# --- scale -------------------------------------------------------------------------------


def test_a_hundred_thousand_sessions_generate_vectorised():
    # a sanity check, not a timing assertion (about 2 s on one core)
    clicks = generate_clicks(n_sessions=100_000, n_items=20_000, n_categories=50, seed=5)
    assert clicks["session_id"].n_unique() == 100_000
    assert 3.5 < clicks.height / 100_000 < 4.5  # mean length 4
    lengths = np.bincount(clicks["session_id"].to_numpy())[1:]
    assert lengths.min() >= 1
