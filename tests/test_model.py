"""SR-GNN: propagation and readout against the paper's dense equations."""

from dataclasses import FrozenInstanceError

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


def test_inference_weights_are_the_parameters_they_stand_for():
    torch.manual_seed(5)
    model = SRGNN(SRGNNConfig(n_items=7, dim=4, position_readout=True, max_positions=3))
    model.train()
    w = model.inference_weights()
    assert model.training  # the mode is restored
    conv, gru = model.conv, model.conv.gru
    for array, param in [
        (w.item_table, model.embedding.weight),  # [7, 4]
        (w.conv.w_in, conv.lin_in.weight),  # [4, 4]
        (w.conv.b_in, conv.lin_in.bias),
        (w.conv.w_out, conv.lin_out.weight),
        (w.conv.b_out, conv.lin_out.bias),
        (w.conv.bias_in, conv.bias_in),
        (w.conv.bias_out, conv.bias_out),
        (w.conv.w_ih, gru.weight_ih),  # [12, 8]: r, z, n stacked
        (w.conv.b_ih, gru.bias_ih),
        (w.conv.w_hh, gru.weight_hh),  # [12, 4]
        (w.conv.b_hh, gru.bias_hh),
        (w.w_1, model.lin_last.weight),
        (w.c, model.lin_last.bias),
        (w.w_2, model.lin_node.weight),
        (w.b_2, model.lin_node.bias),
        (w.q, model.attn.weight[0]),  # [4]
        (w.w_3, model.lin_out.weight),  # [4, 8]
        (w.b_3, model.lin_out.bias),
        (w.position, model.position.weight),  # [3, 4]
    ]:
        assert array.dtype == np.float32 and array.shape == tuple(param.shape)
        np.testing.assert_array_equal(array, param.detach().numpy())
    assert w.item_table.shape == (7, 4) and w.conv.w_ih.shape == (12, 8)
    assert w.w_3.shape == (4, 8) and w.q.shape == (4,)
    assert w.cold_mask is None  # id-only
    # a snapshot: copies, and frozen
    with torch.no_grad():
        model.lin_last.weight.add_(1.0)
    assert not np.array_equal(w.w_1, model.lin_last.weight.detach().numpy())
    with pytest.raises(FrozenInstanceError):
        w.q = np.zeros(4, dtype=np.float32)
    model.eval()
    model.inference_weights()
    assert not model.training


def test_inference_weights_reproduce_the_scores_by_hand():
    """Eq. 1-5 and the readout in numpy, from the weights alone, equal the model."""
    torch.manual_seed(6)
    model = SRGNN(SRGNNConfig(n_items=6, dim=4, normalize=True, position_readout=True))
    w = model.inference_weights()
    assert model.training  # a new module trains; still does
    clicks = [1, 2, 3, 2, 4]
    g = session_graph(clicks)

    def sigmoid(v):
        return 1.0 / (1.0 + np.exp(-v))

    np.testing.assert_allclose(np.linalg.norm(w.item_table, axis=1), 1.0, rtol=1e-6)  # NISER
    h = w.item_table[g.x.numpy()]  # [4 nodes, d]
    cw = w.conv
    a = np.concatenate(
        [
            g.A_in.numpy() @ (h @ cw.w_in.T + cw.b_in) + cw.bias_in,
            g.A_out.numpy() @ (h @ cw.w_out.T + cw.b_out) + cw.bias_out,
        ],
        axis=-1,
    )
    i_r, i_z, i_n = np.split(a @ cw.w_ih.T + cw.b_ih, 3, axis=-1)
    h_r, h_z, h_n = np.split(h @ cw.w_hh.T + cw.b_hh, 3, axis=-1)
    r, z = sigmoid(i_r + h_r), sigmoid(i_z + h_z)
    cand = np.tanh(i_n + r * h_n)
    h = (1 - z) * cand + z * h
    v = h[g.alias.numpy()]  # [5 clicks, d]
    p = w.position[[4, 3, 2, 1, 0]]  # clicks before the last one
    alpha = sigmoid(v[-1] @ w.w_1.T + w.c + v @ w.w_2.T + w.b_2 + p) @ w.q  # [5]
    s_h = w.w_3 @ np.concatenate([alpha @ v, v[-1]]) + w.b_3
    expected = 16.0 * w.item_table @ (s_h / np.linalg.norm(s_h))  # sigma cos
    batch = session_graph_batch(Samples.from_lists([clicks], [0]))
    with torch.no_grad():
        got = model.eval()(batch)[0].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_inference_weights_of_a_content_model():
    content = {"cardinalities": [3], "text_buckets": [], "n_numeric": 0, "vector_dims": []}
    model = SRGNN(SRGNNConfig(n_items=5, dim=4, content=content, id_dropout=0.5))
    cold = torch.tensor([False, False, True, False, True])
    model.set_catalog({"categorical": torch.tensor([[1], [2], [1], [0], [2]])}, cold)
    with torch.no_grad():
        model.item_repr.id_embedding.weight.uniform_(-1.0, 1.0)
    model.train()
    w = model.inference_weights()
    assert model.training
    np.testing.assert_array_equal(w.cold_mask, cold.numpy())
    with torch.no_grad():  # evaluation mode: every clicked item keeps its id part
        np.testing.assert_array_equal(w.item_table, model.eval().item_table().numpy())
        delta = 1.0 - cold.float().unsqueeze(1)
        content_part = model.item_repr.content_proj(model.content_encoder(model.catalog.features()))
        expected = delta * model.item_repr.id_embedding.weight + content_part
    np.testing.assert_allclose(w.item_table, expected.numpy(), rtol=1e-6)
