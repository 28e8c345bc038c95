"""Content encoder and id + content item vectors: hand-computed outputs, id dropout,
and a cold item scored from content alone."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from sessionrec.data.catalog import read_catalog
from sessionrec.data.vocab import ItemVocab
from sessionrec.nn.content import ContentEncoder, ItemRepresentation, catalog_tensors

torch.set_num_threads(1)


def small_catalog():
    return read_catalog(
        pl.DataFrame(
            {
                "item": [1, 2, 3],
                "cat": ["x", "y", "x"],
                "title": ["a b", None, "b"],
                "price": [1.0, None, 3.0],
                "emb": [[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]],
            }
        ),
        text_buckets=8,
        char_ngrams=(),
        word_bigrams=False,
    )


def test_catalog_tensors_shapes_and_values() -> None:
    catalog = small_catalog()
    t = catalog_tensors(catalog)
    assert t["categorical"].tolist() == [[1], [2], [1]]
    assert t["text_offsets/0"].tolist() == [0, 2, 2, 3]
    # bucket ids renumbered densely over the buckets in use (in bucket order)
    raw = catalog.text["title"].ids.tolist()
    used = sorted(set(raw))
    assert t["text_ids/0"].tolist() == [used.index(i) for i in raw]
    assert ContentEncoder.from_catalog(catalog, dim=2).text[0].num_embeddings == len(used)
    # numeric: standardised price (mean 2, std 1), then the missing flag
    assert t["numeric"].tolist() == [[-1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]
    assert t["vector/0"].tolist() == [[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]]


def test_content_encoder_sums_the_feature_maps_by_hand() -> None:
    catalog = small_catalog()
    enc = ContentEncoder.from_catalog(catalog, dim=2)
    with torch.no_grad():
        enc.categorical[0].weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
        enc.text[0].weight.zero_()
        ids = catalog_tensors(catalog)["text_ids/0"]  # item 1: w:a, w:b; item 3: w:b
        enc.text[0].weight[int(ids[0])] += torch.tensor([2.0, 0.0])
        enc.text[0].weight[int(ids[1])] += torch.tensor([0.0, 4.0])
        enc.numeric.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 10.0]]))
        enc.numeric.bias.zero_()
        enc.vector[0].weight.copy_(torch.eye(2))
    out = enc(catalog_tensors(catalog))
    # item 1: cat x (1,0) + mean bag ((2,0)+(0,4))/2 = (1,2) + price (-1,0) + emb (1,0)
    # item 2: cat y (0,1) + empty bag 0 + missing price (0,10) + emb (0,2)
    # item 3: cat x (1,0) + bag (0,4) + price (1,0) + emb (1,1)
    # (if w:a and w:b share a bucket the bag of item 1 differs; they do not with 8 buckets)
    assert ids[0] != ids[1]
    expected = torch.tensor([[2.0, 2.0], [0.0, 13.0], [3.0, 5.0]])
    torch.testing.assert_close(out, expected)


def test_unknown_items_get_no_categorical_or_text_signal() -> None:
    catalog = small_catalog().align(ItemVocab([2, 99]))  # 99: no catalog row
    enc = ContentEncoder.from_catalog(catalog, dim=4)
    with torch.no_grad():
        enc.numeric.weight.zero_()
        enc.numeric.bias.zero_()
    out = enc(catalog_tensors(catalog))
    assert out.shape == (4, 4)  # 2 vocabulary items + 2 catalog items without clicks
    torch.testing.assert_close(out[1], torch.zeros(4))  # unknown: code 0, empty bag, 0 vector


def test_reset_parameters_keeps_the_unknown_row_zero_and_gradients_flow() -> None:
    catalog = small_catalog()
    enc = ContentEncoder.from_catalog(catalog, dim=3)
    enc.reset_parameters()
    assert torch.count_nonzero(enc.categorical[0].weight[0]) == 0
    enc(catalog_tensors(catalog)).sum().backward()
    assert enc.text[0].weight.grad is not None and enc.vector[0].weight.grad is not None
    assert torch.count_nonzero(enc.categorical[0].weight.grad[0]) == 0


def test_content_encoder_needs_a_feature() -> None:
    with pytest.raises(ValueError, match="no feature columns"):
        ContentEncoder(4)


def test_item_representation_by_hand() -> None:
    rep = ItemRepresentation(num_items=3, dim=2, content_dim=2, id_dropout=0.5, id_init="uniform")
    with torch.no_grad():
        rep.id_embedding.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        rep.content_proj.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 3.0]]))
    content = torch.tensor([[1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    rep.eval()
    # v_i = e_i + W c_i
    torch.testing.assert_close(rep(content), torch.tensor([[3.0, 3.0], [0.0, 4.0], [3.0, 1.0]]))
    # cold items: content only, v_i = W c_i
    cold = torch.tensor([False, False, True])
    torch.testing.assert_close(
        rep(content, cold), torch.tensor([[3.0, 3.0], [0.0, 4.0], [2.0, 0.0]])
    )


def test_mean_imputed_id_part_by_hand() -> None:
    rep = ItemRepresentation(3, 2, 2, id_dropout=0.5, id_init="uniform", id_impute="mean")
    with torch.no_grad():
        rep.id_embedding.weight.copy_(torch.tensor([[1.0, 0.0], [3.0, 2.0], [9.0, 9.0]]))
        rep.content_proj.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 3.0]]))
    content = torch.tensor([[1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    rep.eval()
    cold = torch.tensor([False, False, True])
    # the cold item's id part is the mean of the clicked items' (1, 0) and (3, 2): (2, 1);
    # its own row (9, 9) is never used. v = [e_0 + W c_0, e_1 + W c_1, (2, 1) + W c_2]
    expected = torch.tensor([[3.0, 3.0], [3.0, 5.0], [4.0, 1.0]])
    torch.testing.assert_close(rep(content, cold), expected)
    # in training, a dropped item gets the mean too: with every id dropped, all rows are
    # mean + W c
    rep.train()
    rep.id_dropout = 1.0
    mean = torch.tensor([2.0, 1.0])
    torch.testing.assert_close(rep(content, cold), mean + content @ rep.content_proj.weight.T)


def test_id_dropout_in_training_only() -> None:
    torch.manual_seed(0)
    n = 4000
    rep = ItemRepresentation(n, 1, 1, id_dropout=0.3, id_init="uniform")
    with torch.no_grad():
        rep.id_embedding.weight.fill_(1.0)
        rep.content_proj.weight.zero_()
    content = torch.zeros(n, 1)
    rep.train()
    kept = rep(content).squeeze(1)
    assert set(kept.unique().tolist()) == {0.0, 1.0}  # dropped, not rescaled
    assert abs(1.0 - kept.mean().item() - 0.3) < 0.03
    cold = torch.zeros(n, dtype=torch.bool)
    cold[:100] = True
    assert rep(content, cold)[:100].abs().sum() == 0  # cold ids always dropped
    rep.eval()
    assert rep(content).sum().item() == n
    assert ItemRepresentation(3, 2, 2).id_embedding.weight.abs().sum() == 0  # zeros init


def test_item_representation_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="id_dropout"):
        ItemRepresentation(3, 2, 2, id_dropout=1.5)
    with pytest.raises(ValueError, match="id_init"):
        ItemRepresentation(3, 2, 2, id_init="ones")
    with pytest.raises(ValueError, match="id_impute"):
        ItemRepresentation(3, 2, 2, id_impute="median")
    with pytest.raises(ValueError, match="rows"):
        ItemRepresentation(3, 2, 2)(torch.zeros(4, 2))


def test_a_cold_item_is_scored_from_its_content() -> None:
    """20 items in 4 categories; items 16..19 (one per category) never clicked.

    A linear scorer ``s(q, i) = <u_q, v_i>`` learns to predict a random clicked item of
    the query's category. With id dropout, the cold item of category ``q`` (content only)
    must outrank every item of the other categories.
    """
    torch.manual_seed(0)
    n_items, n_cats, dim = 20, 4, 8
    categories = np.arange(n_items) % n_cats
    catalog = read_catalog(
        pl.DataFrame({"item": np.arange(n_items), "category": categories.astype(str)}),
        categorical=["category"],
    ).align(ItemVocab(np.arange(16)))
    features = catalog_tensors(catalog)
    cold = torch.as_tensor(catalog.cold_mask)
    assert cold.tolist() == [False] * 16 + [True] * 4
    encoder = ContentEncoder.from_catalog(catalog, dim)
    rep = ItemRepresentation(n_items, dim, dim, id_dropout=0.5)
    query = torch.nn.Embedding(n_cats, dim)
    params = [*encoder.parameters(), *rep.parameters(), *query.parameters()]
    opt = torch.optim.Adam(params, lr=0.05)
    warm = torch.arange(16)
    for _ in range(150):
        target = warm[torch.randint(0, 16, (64,))]
        q = torch.as_tensor(categories)[target]
        items = rep(encoder(features), cold)  # [20, d]
        scores = query(q) @ items.T  # [64, 20]
        loss = torch.nn.functional.cross_entropy(scores, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    rep.eval()
    with torch.no_grad():
        scores = query(torch.arange(n_cats)) @ rep(encoder(features), cold).T  # [4, 20]
    for q in range(n_cats):
        cold_item = 16 + q
        others = scores[q, torch.as_tensor(categories != q)]
        assert scores[q, cold_item] > others.max(), (q, scores[q])
