"""Catalogs of millions of items: the sampled softmax (logQ correction), row-wise item
vectors and sparse updates (LazyAdam), evaluation in item blocks with a running top-k,
the planted clickstreams of the scale benchmark, and non-finite training stopped."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionrec.data.sessions import Samples
from sessionrec.errors import ConfigError, NonFiniteError
from sessionrec.graph import session_graph_batch
from sessionrec.nn.srgnn import SRGNN, SRGNNConfig
from sessionrec.train.evaluation import BatchScores, evaluate_model
from sessionrec.train.objective import SAMPLED_SOFTMAX_MIN_ITEMS, SampledSoftmax, choose_loss
from sessionrec.train.optim import LazyAdam


# -- the sampled softmax ---------------------------------------------------------------
class _Toy(torch.nn.Module):
    """A stand-in for SRGNN: item vectors are a free table, session vectors are given."""

    def __init__(self, table: torch.Tensor, s_h: torch.Tensor) -> None:
        super().__init__()
        self.table = torch.nn.Parameter(table.clone())
        self.s_h = s_h

    def item_rows(self, index: torch.Tensor) -> torch.Tensor:
        return self.table[index]

    def session_embedding(self, graph, node_vectors=None):  # noqa: ANN001, ARG002
        return self.s_h

    def candidate_logits(self, s_h: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return s_h @ rows.T


class _Graph:
    x = torch.tensor([0, 1])


def test_sampled_softmax_by_hand():
    """4 items with target counts n = (3, 1, 0, 6), K = 2 negatives drawn as items 3 and
    1, q_c = (n_c + 1)^1 / 13 over the items that are targets (item 2 never is), a batch
    of B = 2 sessions with targets 0 and 3. The candidates are {0, 1, 3}; with
    pi = n / 10, E_c = B pi_c + K q_c = (0.6 + 8/13, 0.2 + 4/13, 1.2 + 14/13)."""
    table = torch.tensor([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0], [1.0, 1.0]])
    s_h = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    loss_fn = SampledSoftmax(np.array([3, 1, 0, 6]), num_negatives=2, exponent=1.0)
    loss_fn.negatives = lambda: torch.tensor([3, 1])  # type: ignore[method-assign]
    model = _Toy(table, s_h)
    loss = loss_fn.loss(model, _Graph(), torch.tensor([0, 3]))  # type: ignore[arg-type]
    expected_counts = np.array([0.6 + 8 / 13, 0.2 + 4 / 13, 1.2 + 14 / 13])
    # z = s_h @ [e0, e1, e3]^T = [[2, 0, 2], [0, 1, 1]], corrected by -log E
    z = np.array([[2.0, 0.0, 2.0], [0.0, 1.0, 1.0]]) - np.log(expected_counts)
    log_softmax = z - np.log(np.exp(z).sum(1, keepdims=True))
    targets = [0, 2]  # item 0 is column 0, item 3 column 2
    assert loss.item() == pytest.approx(-(log_softmax[0, 0] + log_softmax[1, 2]) / 2, rel=1e-6)
    loss.backward()
    # dL/de_c = sum_i (softmax_ic - [c = t_i]) s_i / B; item 2 (not a candidate): 0
    p = np.exp(log_softmax)
    for i, t in enumerate(targets):
        p[i, t] -= 1.0
    grad = p.T @ s_h.numpy() / 2  # [3 candidates, d]
    np.testing.assert_allclose(model.table.grad[[0, 1, 3]].numpy(), grad, rtol=1e-5)
    assert model.table.grad[2].abs().sum() == 0


def test_sampled_negatives_follow_q_and_skip_items_never_targets():
    torch.manual_seed(0)
    loss_fn = SampledSoftmax(np.array([0, 1, 3, 0, 7]), num_negatives=40_000, exponent=1.0)
    drawn = np.bincount(loss_fn.negatives().numpy(), minlength=5) / 40_000
    q = np.array([0, 2, 4, 0, 8]) / 14  # (n + 1) over the items that are targets
    np.testing.assert_allclose(drawn, q, atol=0.01)
    everyone = SampledSoftmax(np.array([0, 1]), num_negatives=1000, exponent=0.0,
                              include_never_targets=True)  # fmt: skip
    assert set(everyone.negatives().tolist()) == {0, 1}


def test_the_loss_is_chosen_by_catalog_size():
    assert choose_loss("auto", SAMPLED_SOFTMAX_MIN_ITEMS) == "full"
    assert choose_loss("auto", SAMPLED_SOFTMAX_MIN_ITEMS + 1) == "sampled"
    assert choose_loss("full", 10**8) == "full" and choose_loss("sampled", 10) == "sampled"
    with pytest.raises(ConfigError, match="loss must be one of") as err:
        choose_loss("hinge", 10)
    assert err.value.options == ("TrainConfig.loss",)


def test_sampled_only_settings_under_the_full_softmax_are_named():
    """`--set num_negatives=10` on a catalog of 30 items: loss='auto' trains with the full
    softmax, so the setting would be recorded and unused (a new user's case)."""
    import warnings

    from sessionrec.train import TrainConfig
    from sessionrec.train.objective import warn_unused_sampled_settings

    config = TrainConfig(num_negatives=10)
    with pytest.warns(
        UserWarning, match=r"^num_negatives is read by the sampled softmax only"
    ) as got:
        warn_unused_sampled_settings(config, "full", 30)
    message = str(got[0].message)
    assert "(loss='auto' keeps it up to 40,000 items; this catalog has 30): it has no" in message
    both = TrainConfig(loss="full", num_negatives=10, negative_exponent=1.0)
    with pytest.warns(
        UserWarning, match=r"num_negatives, negative_exponent are .*\(loss='full'\): they have"
    ):
        warn_unused_sampled_settings(both, "full", 30)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_unused_sampled_settings(config, "sampled", 30)  # used
        warn_unused_sampled_settings(TrainConfig(), "full", 30)  # defaults: nothing to say


# -- rows of the item table --------------------------------------------------------------
def _content_model(n: int = 12) -> SRGNN:
    import polars as pl

    from sessionrec.data.catalog import read_catalog
    from sessionrec.nn.content import catalog_tensors, content_sizes

    frame = pl.DataFrame(
        {
            "item_id": list(range(n)),
            "category": [f"c{i % 3}" for i in range(n)],
            "title": [" ".join(["word"] * (i % 4) + [f"w{i}"]) for i in range(n)],
            "price": [float(i) for i in range(n)],
        }
    )
    catalog = read_catalog(frame, "item_id", categorical=["category"], text=["title"],
                           numeric=["price"])  # fmt: skip
    torch.manual_seed(0)
    model = SRGNN(SRGNNConfig(n_items=n, dim=8, normalize=True, content=content_sizes(catalog),
                              id_init="uniform"))  # fmt: skip
    model.set_catalog(catalog_tensors(catalog), torch.arange(n) % 5 == 0)
    return model.eval()


def test_item_rows_are_the_rows_of_the_item_table():
    torch.manual_seed(0)
    index = torch.tensor([3, 7, 7, 0, 11])
    for model in (SRGNN(SRGNNConfig(n_items=12, dim=8, normalize=True)).eval(), _content_model()):
        torch.testing.assert_close(model.item_rows(index), model.item_table()[index])


def test_sparse_gradients_touch_only_the_rows_used():
    model = _content_model().train()
    model.set_sparse_gradients(True)
    model.item_rows(torch.tensor([1, 4])).sum().backward()
    for p in model.item_table_parameters():
        assert p.grad is None or p.grad.is_sparse
    grad = model.item_table_parameters()[0].grad.coalesce()  # the id table
    assert sorted(grad.indices()[0].tolist()) == [1, 4]


# -- LazyAdam --------------------------------------------------------------------------
def test_lazy_adam_with_dense_gradients_is_adam_with_coupled_l2():
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(5, 3))
    b = torch.nn.Parameter(a.detach().clone())
    ours = LazyAdam([a], lr=0.1, weight_decay=0.01)
    theirs = torch.optim.Adam([b], lr=0.1, weight_decay=0.01)
    for step in range(4):
        g = torch.randn(5, 3, generator=torch.Generator().manual_seed(step))
        a.grad, b.grad = g.clone(), g.clone()
        ours.step()
        theirs.step()
    torch.testing.assert_close(a, b)


def test_lazy_adam_updates_only_the_rows_of_a_sparse_gradient():
    """Rows 0 and 2 touched once (t = 1): theta - lr * g / (|g| + eps) after bias
    correction, with g = grad + lambda * theta; row 1 untouched."""
    p = torch.nn.Parameter(torch.tensor([[1.0, -1.0], [2.0, 2.0], [0.5, 0.0]]))
    opt = LazyAdam([p], lr=0.1, weight_decay=0.5)
    p.grad = torch.sparse_coo_tensor(
        [[0, 2]], torch.tensor([[1.0, 1.0], [-2.0, 0.0]]), (3, 2), check_invariants=True
    )
    opt.step()
    g = np.array([[1.0, 1.0], [-2.0, 0.0]]) + 0.5 * np.array([[1.0, -1.0], [0.5, 0.0]])
    step = 0.1 * g / (np.abs(g) + 1e-8)  # m_hat = g, sqrt(v_hat) = |g| at t = 1
    expected = np.array([[1.0, -1.0], [2.0, 2.0], [0.5, 0.0]])
    expected[[0, 2]] -= step
    np.testing.assert_allclose(p.detach().numpy(), expected, rtol=1e-6)
    assert opt.state[p]["exp_avg"][1].abs().sum() == 0  # row 1: no moment either


def test_row_wise_lazy_adam_shares_one_second_moment_per_row():
    """t = 1: m_hat = g, v_hat_r = mean(g_r^2): the step of row r is lr * g / rms(g_r)."""
    p = torch.nn.Parameter(torch.zeros(3, 2))
    opt = LazyAdam([p], lr=0.1, rowwise=True)
    p.grad = torch.sparse_coo_tensor(
        [[1]], torch.tensor([[3.0, 4.0]]), (3, 2), check_invariants=True
    )
    opt.step()
    rms = math.sqrt((9 + 16) / 2)
    np.testing.assert_allclose(p[1].detach().numpy(), [-0.3 / rms, -0.4 / rms], rtol=1e-6)
    assert opt.state[p]["exp_avg_sq"].shape == (3, 1)
    assert p[0].abs().sum() == 0 and p[2].abs().sum() == 0


# -- evaluation in item blocks ----------------------------------------------------------
def _scores_setup(n_items: int = 50, repeat_bonus: float = 1.5):
    torch.manual_seed(1)
    model = SRGNN(SRGNNConfig(n_items=n_items, dim=6, repeat_bonus=repeat_bonus)).eval()
    rng = np.random.default_rng(0)
    prefixes = [rng.integers(0, n_items, int(n)).tolist() for n in rng.integers(1, 6, 9)]
    samples = Samples.from_lists(prefixes, rng.integers(0, n_items, 9).tolist())
    graph = session_graph_batch(samples, model.config.edge_weights)
    return model, samples, graph


def test_blocks_give_the_top_k_of_a_full_sort():
    """A running top-k over blocks of 7 items equals a full sort (score descending, ties
    to the lower index), with the repeat bonus and an offset applied block by block."""
    model, _, graph = _scores_setup()
    with torch.no_grad():
        table = model.item_table()
        full = model.adjust(model.scores(model.session_embedding(graph, table), table), graph)
        blocks = BatchScores(model, graph, table, block_bytes=4 * 9 * 7)
        assert blocks.block == 7
        top = blocks.top_k(10)[0]
        bonus_zero = blocks.top_k(10, [(0.0, None)])[0]
    order = np.lexsort((np.arange(50)[None, :].repeat(9, 0), -full.numpy()), axis=1)[:, :10]
    np.testing.assert_array_equal(top, order)
    raw = model.scores(model.session_embedding(graph, table), table).detach().numpy()
    np.testing.assert_array_equal(
        bonus_zero, np.lexsort((np.arange(50)[None, :].repeat(9, 0), -raw), axis=1)[:, :10]
    )


def test_a_grid_of_adjustments_in_blocks_equals_each_one_alone():
    """Calibration ranks one pass of blocks under every (repeat bonus, new-item offset):
    the columns one adjustment changes are put back before the next (no copy of the
    block), so each equals a full sort of that adjustment alone, for a plain model and a
    content model (every fifth item new, offsets of both signs)."""
    _, samples, _ = _scores_setup(n_items=50)
    grid = [(0.0, 0.0), (3.0, None), (0.5, -2.0), (None, 4.0), (0.0, 1.0), (8.0, -0.5)]
    for model in (_scores_setup(n_items=50)[0], _content_model(n=50)):
        graph = session_graph_batch(samples, model.config.edge_weights)
        with torch.no_grad():
            table = model.item_table()
            raw = model.scores(model.session_embedding(graph, table), table)
            blocks = BatchScores(model, graph, None, block_bytes=4 * 9 * 7)
            assert blocks.block == 7
            tops = blocks.top_k(10, grid)
            for (b, o), top in zip(grid, tops):
                full = model.adjust(raw.clone(), graph, b, o).numpy()
                order = np.lexsort((np.arange(50)[None, :].repeat(9, 0), -full), axis=1)
                np.testing.assert_array_equal(top, order[:, :10], err_msg=str((b, o)))


def test_evaluate_model_in_blocks_equals_one_block(monkeypatch):
    import sessionrec.train.evaluation as evaluation

    model, samples, _ = _scores_setup(n_items=80)
    whole = evaluate_model(model, samples, ks=(5, 20))
    content = _content_model(n=80)
    content_whole = evaluate_model(content, samples, ks=(5, 20))
    # blocks of 13 items, each made when scored (no [n_items, d] table)
    monkeypatch.setattr(evaluation, "SCORE_BLOCK_BYTES", 4 * 9 * 13)
    assert evaluate_model(model, samples, ks=(5, 20)) == whole
    assert evaluate_model(content, samples, ks=(5, 20)) == content_whole


def test_evaluation_refuses_non_finite_scores():
    model, samples, _ = _scores_setup()
    with torch.no_grad():
        model.lin_out.weight[0, 0] = float("nan")
    with pytest.raises(NonFiniteError, match="NaN or infinity"):
        evaluate_model(model, samples)


# -- training ----------------------------------------------------------------------------
def test_sampled_training_learns_and_resumes(tiny_dataset, tmp_path):
    from sessionrec.train import Trainer, config_preset

    overrides = {"epochs": 3, "batch_size": 32, "lr": 0.01, "loss": "sampled",
                 "num_negatives": 8, "patience": 10}  # fmt: skip
    model_config, train_config = config_preset("srgnn", tiny_dataset.n_items, **overrides)
    trained = Trainer(model_config, train_config, tmp_path / "m", progress=False).fit(tiny_dataset)
    assert trained.metrics["objective"] == "sampled"
    assert trained.metrics["test"]["hr@10"] > 60.0  # the +1 successor rule, 30 items
    ck = torch.load(tmp_path / "m" / "checkpoint.pt", weights_only=True)
    assert "table_optimizer" in ck  # LazyAdam's rows, resumable
    again = Trainer(model_config, train_config, tmp_path / "m", progress=False)
    resumed = again.fit(tiny_dataset, resume=True)  # every epoch done: the same best state
    assert resumed.metrics["test"] == trained.metrics["test"]


def test_diverging_training_stops_at_the_first_non_finite_step(tiny_dataset, tmp_path):
    from sessionrec.train import Trainer, config_preset

    model_config, train_config = config_preset(
        "srgnn", tiny_dataset.n_items, epochs=2, batch_size=32, lr=1e12
    )
    trainer = Trainer(model_config, train_config, tmp_path / "m", progress=False)
    with pytest.raises(NonFiniteError, match=r"diverged at epoch 1, step \d+: the") as err:
        trainer.fit(tiny_dataset)
    assert err.value.options == ("TrainConfig.lr",)
    assert not (tmp_path / "m" / "model.pt").exists()  # nothing saved


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(
        [
            "lr",
            "lr_decay",
            "weight_decay",
            "label_smoothing",
            "min_improvement",
            "negative_exponent",
            "warm_shrink",
        ]
    ),  # fmt: skip
    st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just(math.nan)),
)
def test_training_options_are_finite_and_in_range_or_refused(name, value):
    """A float option is accepted exactly when it is finite and in its range; otherwise
    a ConfigError names it."""
    from sessionrec.train import TrainConfig

    ranges = {
        "lr": lambda v: v > 0,
        "lr_decay": lambda v: 0 < v <= 1,
        "weight_decay": lambda v: v >= 0,
        "label_smoothing": lambda v: 0 <= v < 1,
        "min_improvement": lambda v: v >= 0,
        "negative_exponent": lambda v: 0 <= v <= 1,
        "warm_shrink": lambda v: 0 <= v <= 1,
    }
    ok = math.isfinite(value) and ranges[name](value)
    try:
        TrainConfig(**{name: value})
    except ConfigError as exc:
        assert not ok and name in str(exc) and exc.options == (f"TrainConfig.{name}",)
    else:
        assert ok


@settings(max_examples=30, deadline=None)
@given(
    st.sampled_from(["temperature", "dropout", "content_scale", "repeat_bonus", "id_dropout"]),
    st.floats(allow_nan=True, allow_infinity=True),
)
def test_model_options_are_finite_and_in_range_or_refused(name, value):
    ranges = {
        "temperature": lambda v: v > 0,
        "dropout": lambda v: 0 <= v < 1,
        "content_scale": lambda v: v >= 0,
        "repeat_bonus": lambda v: True,
        "id_dropout": lambda v: 0 <= v <= 1,
    }
    ok = math.isfinite(value) and ranges[name](value)
    try:
        SRGNNConfig(n_items=3, **{name: value})
    except ConfigError:
        assert not ok
    else:
        assert ok


# -- planted clickstreams -----------------------------------------------------------------
def test_planted_sessions_walk_their_groups_and_cover_every_item():
    from sessionrec.data.planted import PlantedConfig, planted_clicks

    cfg = PlantedConfig(n_items=300, n_clicks=6000, group_size=30, switch=0.25, seed=3)
    clicks = planted_clicks(cfg, with_groups=True)
    counts = np.bincount(clicks["item_id"].to_numpy(), minlength=300)
    assert counts.min() >= 2  # every item survives min_item_support=2
    sessions = clicks["session_id"].to_numpy()
    groups = clicks["group"].to_numpy()
    same = sessions[1:] == sessions[:-1]
    step = (groups[1:] - groups[:-1])[same] % 10  # 10 groups
    assert set(np.unique(step)) <= {0, 1}  # stay, or the next group
    assert abs(np.mean(step == 1) - 0.25) < 0.03
    lengths = np.bincount(sessions)
    assert lengths.min() >= 2 and lengths.max() <= 10
    assert np.all(np.diff(clicks["timestamp"].to_numpy())[same] == 30.0)
    # the item of a click lies in the click's group
    item_group = {}
    for item, group in zip(clicks["item_id"].to_list(), groups.tolist()):
        assert item_group.setdefault(item, group) == group


def test_validation_is_capped_where_ranking_every_item_would_cost_too_much(tiny_dataset):
    """``valid_samples="auto"`` keeps every validation sample until samples x items passes
    the budget; then a fixed random subset (the same each epoch and run) selects."""
    from sessionrec.train import Trainer, config_preset
    from sessionrec.train.training_data import (
        MIN_AUTO_VALID_SAMPLES,
        VALID_SCORE_BUDGET,
        valid_cap,
    )

    assert valid_cap("all", 10**7) is None and valid_cap(500, 10) == 500
    assert valid_cap("auto", 43_097) == VALID_SCORE_BUDGET // 43_097  # 116,018 > Diginetica's
    assert valid_cap("auto", 5_000_000) == MIN_AUTO_VALID_SAMPLES  # 1,000 -> the floor
    model_config, train_config = config_preset(
        "srgnn", tiny_dataset.n_items, epochs=2, batch_size=32, valid_samples=10
    )
    trained = Trainer(model_config, train_config, progress=False).fit(tiny_dataset)
    assert [h["valid"]["n_samples"] for h in trained.history] == [10, 10]
    with pytest.raises(ConfigError, match="valid_samples"):
        config_preset("srgnn", 3, valid_samples=0)
