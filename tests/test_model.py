"""SR-GNN: propagation and readout against the paper's dense equations."""

import numpy as np
import pytest
import torch

from sessionrec.data.sessions import Samples
from sessionrec.errors import ConfigError
from sessionrec.graph import session_graph, session_graph_batch
from sessionrec.nn.gated_session_conv import GatedSessionGraphConv
from sessionrec.nn.srgnn import SRGNN, SRGNNConfig, l2_normalize


def _dense_gnn_cell(conv: GatedSessionGraphConv, a_in, a_out, h):
    """The paper's Eq. 1-5 with dense matrices, as in the authors' reference code."""
    input_in = a_in @ conv.lin_in(h) + conv.bias_in
    input_out = a_out @ conv.lin_out(h) + conv.bias_out
    a = torch.cat([input_in, input_out], -1)
    gi = a @ conv.gru.weight_ih.T + conv.gru.bias_ih
    gh = h @ conv.gru.weight_hh.T + conv.gru.bias_hh
    i_r, i_z, i_n = gi.chunk(3, -1)
    h_r, h_z, h_n = gh.chunk(3, -1)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return n + z * (h - n)


@pytest.mark.parametrize("steps", [1, 2])
def test_message_passing_equals_dense_equations(steps):
    torch.manual_seed(0)
    g = session_graph([1, 2, 3, 2, 4])
    conv = GatedSessionGraphConv(6, steps=steps)
    h0 = torch.randn(4, 6)
    out = conv(h0, g.edge_index, g.edge_weight_in, g.edge_weight_out)
    expected = h0
    for _ in range(steps):
        expected = _dense_gnn_cell(conv, g.A_in.float(), g.A_out.float(), expected)
    torch.testing.assert_close(out, expected)


def test_readout_by_hand():
    torch.manual_seed(1)
    model = SRGNN(SRGNNConfig(n_items=6, dim=4))
    model.eval()
    clicks = [1, 2, 3, 2, 4]
    g = session_graph(clicks)
    batch = session_graph_batch(Samples.from_lists([clicks], [0]))
    with torch.no_grad():
        h = model.conv(
            model.embedding.weight[g.x], g.edge_index, g.edge_weight_in, g.edge_weight_out
        )
        v = h[g.alias]  # one row per click, repeats included
        v_n = v[-1]
        alpha = model.attn(torch.sigmoid(model.lin_last(v_n) + model.lin_node(v)))  # [5, 1]
        s_g = (alpha * v).sum(0)
        s_h = model.lin_out(torch.cat([s_g, v_n]))
        expected = s_h @ model.embedding.weight.T
        torch.testing.assert_close(model(batch)[0], expected)


def test_batched_logits_equal_one_by_one():
    torch.manual_seed(2)
    model = SRGNN(SRGNNConfig(n_items=20, dim=8, normalize=True, position_readout=True))
    model.eval()
    prefixes = [[1, 2, 3, 2, 4], [9], [4, 4, 1], [2, 3, 19]]
    with torch.no_grad():
        together = model(session_graph_batch(Samples.from_lists(prefixes, [0] * 4)))
        for b, p in enumerate(prefixes):
            alone = model(session_graph_batch(Samples.from_lists([p], [0])))
            torch.testing.assert_close(together[b], alone[0])


def test_niser_scores_are_scaled_cosines():
    torch.manual_seed(3)
    model = SRGNN(SRGNNConfig(n_items=10, dim=5, normalize=True, temperature=7.0))
    model.eval()
    with torch.no_grad():
        logits = model(session_graph_batch(Samples.from_lists([[1, 2]], [0])))
    assert logits.abs().max() <= 7.0 + 1e-5


def test_l2_normalize_gradient_matches_autograd():
    x = torch.randn(7, 5, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(l2_normalize, (x,))
    torch.testing.assert_close(l2_normalize(x), torch.nn.functional.normalize(x, dim=-1))


def test_config_errors():
    with pytest.raises(ConfigError):
        SRGNNConfig(n_items=0)
    with pytest.raises(ConfigError):
        SRGNNConfig(n_items=5, dropout=1.5)
    with pytest.raises(ConfigError):
        SRGNNConfig.from_dict({"n_items": 5, "bogus": 1})
    assert SRGNNConfig.from_dict(SRGNNConfig(n_items=5).to_dict()) == SRGNNConfig(n_items=5)


def test_position_readout_changes_with_order():
    torch.manual_seed(4)
    model = SRGNN(SRGNNConfig(n_items=10, dim=6, position_readout=True))
    model.eval()
    with torch.no_grad():
        a = model(session_graph_batch(Samples.from_lists([[1, 2, 3, 4]], [0])))
        b = model(session_graph_batch(Samples.from_lists([[3, 1, 2, 4]], [0])))
    assert not torch.allclose(a, b)
    assert np.isfinite(a.numpy()).all()


def test_repeat_bonus_by_hand():
    from dataclasses import replace

    model = SRGNN(SRGNNConfig(n_items=5, dim=4, repeat_bonus=2.0))
    graph = session_graph_batch(Samples.from_lists([[1, 2, 1], [3]], [0, 0]))
    logits = torch.zeros(2, 5)
    model.eval()
    # + beta once per distinct item of each session: item 1, clicked twice, gets 2, not 4
    expected = torch.tensor([[0.0, 2.0, 2.0, 0.0, 0.0], [0.0, 0.0, 0.0, 2.0, 0.0]])
    torch.testing.assert_close(model.add_repeat_bonus(logits, graph), expected)
    model.train()  # training never sees it
    torch.testing.assert_close(model.add_repeat_bonus(logits, graph), logits)
    model.eval()
    model.config = replace(model.config, repeat_bonus=0.0)
    torch.testing.assert_close(model.add_repeat_bonus(logits, graph), logits)
    # forward adds it
    with torch.no_grad():
        plain = model(graph)
        model.config = replace(model.config, repeat_bonus=2.0)
        torch.testing.assert_close(model(graph), plain + expected)
