"""Helpers shared by the ONNX export, recommender and Node.js client tests: tiny trained
models with int or string ids, the PyTorch reference and the ONNX runs to compare."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from sessionrec.data.dataset import SessionDataset
from sessionrec.data.sessions import Samples, Sessions
from sessionrec.data.vocab import ItemVocab

N_ITEMS = 30


def raw_ids(kind: str, n_items: int = N_ITEMS) -> np.ndarray:
    """Raw item ids of index ``0..n-1``: ``1000 + i`` or ``"sku-<i>"``."""
    if kind == "int":
        return np.arange(1000, 1000 + n_items, dtype=np.int64)
    return np.array([f"sku-{i:03d}" for i in range(n_items)], dtype=object)


def tiny_dataset(kind: str, n_items: int = N_ITEMS, seed: int = 0) -> SessionDataset:
    """Sessions whose next click is mostly ``previous + 1``: learnable in a second."""
    rng = np.random.default_rng(seed)
    sequences = []
    for start in rng.integers(0, n_items, 300):
        length = int(rng.integers(2, 8))
        seq = [(int(start) + i) % n_items for i in range(length)]
        if rng.random() < 0.2:
            seq[-1] = seq[0]  # some repeats
        sequences.append(seq)
    # skewed popularity so that the fallback order is not all ties
    sequences += [[1, 2]] * 15 + [[7, 2]] * 5
    train = Sessions.from_lists(sequences[:280] + sequences[300:], times=None)
    test = Sessions.from_lists(sequences[280:300]).to_samples()
    return SessionDataset(train, test, ItemVocab(raw_ids(kind, n_items)))


def train_tiny(
    kind: str, preset: str = "srgnn", out_dir: Path | None = None, **model_overrides: Any
) -> Any:
    """A model trained for two quick epochs (a few seconds)."""
    import torch

    from sessionrec.train import Trainer, config_preset

    torch.set_num_threads(1)
    dataset = tiny_dataset(kind)
    model_config, train_config = config_preset(
        preset, dataset.n_items, epochs=2, batch_size=32, lr=0.01
    )
    model_config = replace(model_config, **{"dim": 16, **model_overrides})
    return Trainer(model_config, train_config, out_dir, progress=False).fit(dataset)


def random_model(kind: str, n_items: int = N_ITEMS, seed: int = 0, **config: Any) -> Any:
    """An untrained model (random weights) wrapped as a TrainedModel."""
    import torch

    from sessionrec.nn.srgnn import SRGNN, SRGNNConfig
    from sessionrec.train import TrainConfig, TrainedModel

    torch.manual_seed(seed)
    model = SRGNN(SRGNNConfig(n_items=n_items, **{"dim": 16, **config})).eval()
    counts = np.random.default_rng(seed).integers(0, 50, n_items)
    return TrainedModel(
        model, ItemVocab(raw_ids(kind, n_items)), TrainConfig(), counts, data_fingerprint="f" * 64
    )


def pad_batch(sessions: list[list[Any]], kind: str, width: int | None = None) -> np.ndarray:
    """``[B, L]`` input of the ONNX contract: rows padded with -1 / ''."""
    width = max(1, max((len(s) for s in sessions), default=1)) if width is None else width
    pad, dtype = (-1, np.int64) if kind == "int" else ("", object)
    out = np.full((len(sessions), width), pad, dtype=dtype)
    for b, s in enumerate(sessions):
        out[b, : len(s)] = s
    return out


def run_onnx(
    session: Any,
    ids: np.ndarray,
    k: int,
    exclude_seen: bool = False,
    outputs: tuple[str, ...] = ("top_ids", "top_scores", "fallback"),
) -> tuple[np.ndarray, ...]:
    """The ``outputs`` (default ``(top_ids, top_scores, fallback)``) of a raw onnxruntime
    session, fetched by name (``unknown_clicks`` is the fourth output)."""
    return tuple(
        session.run(
            list(outputs),
            {
                "item_ids": ids,
                "k": np.array([k], dtype=np.int64),
                "exclude_seen": np.array([exclude_seen]),
            },
        )
    )


def unknown_clicks(session: Any, ids: np.ndarray) -> np.ndarray:
    """The output ``unknown_clicks [B]`` of a raw onnxruntime session."""
    return run_onnx(session, ids, 1, outputs=("unknown_clicks",))[0]


def as_pre_0_2_file(path: Path, out_dir: Path) -> Path:
    """``path`` as a file exported before sessionrec 0.2.0 would be: contract
    ``sessionrec.onnx/1``, without the output ``unknown_clicks`` (and the nodes only it
    needs), written to ``out_dir/model.onnx`` without a manifest."""
    import onnx

    model = onnx.load(str(path))
    for prop in model.metadata_props:
        if prop.key == "contract":
            prop.value = "sessionrec.onnx/1"
    kept = [o for o in model.graph.output if o.name != "unknown_clicks"]
    del model.graph.output[:]
    model.graph.output.extend(kept)
    while True:  # drop the nodes whose outputs nothing reads any more
        used = {name for node in model.graph.node for name in node.input}
        used |= {o.name for o in model.graph.output}
        dead = [n for n in model.graph.node if not set(n.output) & used]
        if not dead:
            break
        for node in dead:
            model.graph.node.remove(node)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out_dir / "model.onnx"))
    return out_dir / "model.onnx"


def ort_session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def torch_scores(trained: Any, sessions_raw: list[list[Any]], max_length: int = 50) -> np.ndarray:
    """PyTorch logits ``[B, N]`` of sessions of raw ids (unknown ids dropped, the last
    ``max_length`` known clicks kept): the reference of the ONNX graph."""
    import torch

    from sessionrec.graph import session_graph_batch

    prefixes = []
    for raw in sessions_raw:
        index = trained.vocab.index_of(raw)
        index = index[index >= 0][-max_length:]
        assert len(index), "the PyTorch reference needs a known item"
        prefixes.append(index.tolist())
    graph = session_graph_batch(
        Samples.from_lists(prefixes, [0] * len(prefixes)), trained.model.config.edge_weights
    )
    with torch.no_grad():
        return trained.model.eval()(graph).numpy().astype(np.float64)


def assert_top_k_matches(
    reference: np.ndarray, top_index: np.ndarray, top_scores: np.ndarray, atol: float = 1e-4
) -> None:
    """ONNX top-k equals the reference top-k, ties aside: the k best reference scores
    match the returned scores, and every returned item has the score it was returned
    with. Two items swap places only when their scores tie within ``atol``."""
    k = top_index.shape[1]
    expected = -np.sort(-reference, axis=1)[:, :k]
    np.testing.assert_allclose(top_scores, expected, atol=atol, rtol=0)
    np.testing.assert_allclose(
        np.take_along_axis(reference, top_index, axis=1), top_scores, atol=atol, rtol=0
    )
    assert (np.diff(top_scores, axis=1) <= 0).all(), "scores must come best first"
