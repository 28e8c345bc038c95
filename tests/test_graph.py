"""Session graphs: the hand-computed example of the SR-GNN paper's Figure 1 style."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionrec.data.sessions import Samples
from sessionrec.errors import ConfigError
from sessionrec.graph import graph_arrays, session_graph, session_graph_batch


def test_session_1_2_3_2_4_by_hand():
    g = session_graph([1, 2, 3, 2, 4])
    # nodes: the distinct items, ordered by item index
    assert g.x.tolist() == [1, 2, 3, 4]
    # clicks -> nodes
    assert g.alias.tolist() == [0, 1, 2, 1, 3]
    assert g.last_node.tolist() == [3]
    # edges 1->2, 2->3, 3->2, 2->4 (as node indices 0->1, 1->2, 2->1, 1->3)
    edges = sorted(zip(g.edge_index[0].tolist(), g.edge_index[1].tolist()))
    assert edges == [(0, 1), (1, 2), (1, 3), (2, 1)]
    # A_in(i, j): what i receives from j, divided by i's in-degree (item 2 has two in-edges)
    a_in = np.array(
        [
            [0, 0, 0, 0],
            [1 / 2, 0, 1 / 2, 0],
            [0, 1, 0, 0],
            [0, 1, 0, 0],
        ]
    )
    # A_out(i, j): what i sends to j, divided by i's out-degree (item 2 has two out-edges)
    a_out = np.array(
        [
            [0, 1, 0, 0],
            [0, 0, 1 / 2, 1 / 2],
            [0, 1, 0, 0],
            [0, 0, 0, 0],
        ]
    )
    np.testing.assert_allclose(g.A_in.numpy(), a_in)
    np.testing.assert_allclose(g.A_out.numpy(), a_out)


def test_repeated_transition_binary_vs_count():
    # 1->2 happens twice, 1->3 once
    clicks = [1, 2, 1, 2, 1, 3]
    binary = session_graph(clicks, "binary")
    count = session_graph(clicks, "count")
    # node 0 = item 1 sends to items 2 and 3
    np.testing.assert_allclose(binary.A_out.numpy()[0], [0, 1 / 2, 1 / 2])
    np.testing.assert_allclose(count.A_out.numpy()[0], [0, 2 / 3, 1 / 3])
    # item 1 receives from item 2 only (twice): weight 1 either way
    np.testing.assert_allclose(count.A_in.numpy()[0], [0, 1, 0])


def test_self_loop_and_single_click():
    g = session_graph([5, 5])
    assert g.x.tolist() == [5]
    assert g.edge_index.tolist() == [[0], [0]]
    np.testing.assert_allclose(g.A_in.numpy(), [[1.0]])
    one = session_graph([7])
    assert one.edge_index.shape == (2, 0)
    assert one.last_node.tolist() == [0]


def test_batch_equals_graphs_one_by_one():
    prefixes = [[1, 2, 3, 2, 4], [9], [4, 4, 1], [2, 3]]
    batch = session_graph_batch(Samples.from_lists(prefixes, [0, 0, 0, 0]))
    assert batch.num_graphs == 4
    ptr = batch.ptr.tolist()
    click_ptr = batch.click_ptr.tolist()
    for b, prefix in enumerate(prefixes):
        single = session_graph(prefix)
        nodes = slice(ptr[b], ptr[b + 1])
        assert batch.x[nodes].tolist() == single.x.tolist()
        assert (
            batch.alias[click_ptr[b] : click_ptr[b + 1]] - ptr[b]
        ).tolist() == single.alias.tolist()
        assert batch.last_node[b].item() - ptr[b] == single.last_node.item()
        mask = batch.batch[batch.edge_index[0]] == b
        n = len(single.x)
        a_in = torch.zeros(n, n, dtype=torch.float64)
        src, dst = batch.edge_index[:, mask] - ptr[b]
        a_in[dst, src] = batch.edge_weight_in[mask].double()
        torch.testing.assert_close(a_in, single.A_in)


def test_errors():
    with pytest.raises(ConfigError):
        graph_arrays(np.array([1, 2]), np.array([0, 2]), edge_weights="weird")
    with pytest.raises(ConfigError):
        graph_arrays(np.array([-1, 2]), np.array([0, 2]))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 12), min_size=1, max_size=12), min_size=1, max_size=8))
def test_normalised_rows_sum_to_one(prefixes):
    a = graph_arrays(*_flat(prefixes))
    src, dst = a["edge_index"]
    n = len(a["x"])
    # every node with an incoming edge has incoming weights summing to 1; same for outgoing
    in_sum = np.bincount(dst, weights=a["edge_weight_in"], minlength=n)
    out_sum = np.bincount(src, weights=a["edge_weight_out"], minlength=n)
    has_in = np.bincount(dst, minlength=n) > 0
    has_out = np.bincount(src, minlength=n) > 0
    np.testing.assert_allclose(in_sum[has_in], 1.0)
    np.testing.assert_allclose(out_sum[has_out], 1.0)
    assert np.all(in_sum[~has_in] == 0) and np.all(out_sum[~has_out] == 0)
    # nodes map back to the clicked items
    np.testing.assert_array_equal(a["x"][a["alias"]], np.concatenate(prefixes))


def _flat(prefixes):
    lengths = np.array([len(p) for p in prefixes])
    return np.concatenate(prefixes), np.concatenate([[0], np.cumsum(lengths)])
