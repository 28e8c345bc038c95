"""Content encoder and the id + content item representation (cold-start items)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

if TYPE_CHECKING:
    from sessionrec.data.catalog import ItemCatalog

__all__ = [
    "CatalogFeatures",
    "ContentEncoder",
    "ItemRepresentation",
    "catalog_tensors",
    "content_sizes",
]


def _used_buckets(ids: np.ndarray) -> tuple[np.ndarray, int]:
    """Hashed n-gram ids renumbered densely over the buckets the catalog uses.

    A catalog of ``n`` items fills a few tens of buckets per item out of ``2**18``:
    giving rows only to the used ones keeps the text tables (and the optimiser's
    state over them) ``O(n)`` instead of ``2**18 x d``. Bucket collisions are unchanged.
    """
    used, dense = np.unique(np.asarray(ids, dtype=np.int64), return_inverse=True)
    return dense.reshape(-1).astype(np.int64), max(len(used), 1)


def content_sizes(catalog: ItemCatalog) -> dict[str, Any]:
    """The :class:`ContentEncoder` sizes of ``catalog``'s columns (JSON-serialisable)."""
    return {
        "cardinalities": [f.cardinality for f in catalog.categorical.values()],
        "text_buckets": [_used_buckets(t.ids)[1] for t in catalog.text.values()],
        "n_numeric": len(catalog.numeric),
        "vector_dims": [v.dim for v in catalog.vector.values()],
    }


def catalog_tensors(catalog: ItemCatalog) -> dict[str, Tensor]:
    """The tensors of an :class:`~sessionrec.data.catalog.ItemCatalog`, by name.

    Keys (``n`` items; columns in the catalog's order):

    - ``"categorical"``: int64 ``[n, C]``, one code column per categorical feature;
    - ``"text_ids/<k>"``, ``"text_offsets/<k>"``: int64 ``[nnz_k]`` and ``[n + 1]``,
      the CSR bag of the ``k``-th text column, bucket ids renumbered densely over the
      buckets this catalog uses (see :func:`content_sizes`);
    - ``"numeric"``: float32 ``[n, 2 N]``: the ``N`` standardised values, then their
      ``N`` missing flags (1.0 when missing);
    - ``"vector/<k>"``: float32 ``[n, dim_k]``, the ``k``-th vector column.
    """
    n = len(catalog)
    out: dict[str, Tensor] = {}
    codes = [f.codes for f in catalog.categorical.values()]
    out["categorical"] = torch.as_tensor(
        np.stack(codes, axis=1) if codes else np.zeros((n, 0)), dtype=torch.long
    )
    for k, t in enumerate(catalog.text.values()):
        out[f"text_ids/{k}"] = torch.as_tensor(_used_buckets(t.ids)[0], dtype=torch.long)
        out[f"text_offsets/{k}"] = torch.as_tensor(t.offsets, dtype=torch.long)
    values = [f.values for f in catalog.numeric.values()]
    flags = [f.missing.astype(np.float32) for f in catalog.numeric.values()]
    out["numeric"] = torch.as_tensor(
        np.stack(values + flags, axis=1) if values else np.zeros((n, 0)), dtype=torch.float32
    )
    for k, v in enumerate(catalog.vector.values()):
        out[f"vector/{k}"] = torch.as_tensor(v.values, dtype=torch.float32)
    return out


class CatalogFeatures(nn.Module):
    """The :func:`catalog_tensors` of a model's items, held as buffers.

    Buffers move with the module and are saved in its ``state_dict`` (plain tensors:
    ``torch.load(weights_only=True)`` reads them). Their number and shapes depend on the
    catalog, so loading a state dict (re)creates them from the saved tensors.
    """

    def __init__(self, features: dict[str, Tensor] | None = None) -> None:
        super().__init__()
        if features:
            self.set(features)

    @staticmethod
    def _buffer_name(key: str) -> str:
        return key.replace("/", "__")  # "text_ids/0" -> "text_ids__0"

    def set(self, features: dict[str, Tensor]) -> None:
        """Replace every buffer by ``features`` (keys as in :func:`catalog_tensors`)."""
        self._replace_buffers({self._buffer_name(k): v for k, v in features.items()})

    def _replace_buffers(self, buffers: dict[str, Tensor]) -> None:
        for name in list(self._buffers):
            del self._buffers[name]
        for name, value in buffers.items():
            self.register_buffer(name, value)

    def features(self) -> dict[str, Tensor]:
        """The tensors, keyed as in :func:`catalog_tensors`."""
        if not self._buffers:
            raise RuntimeError("no catalog features: call SRGNN.set_catalog first")
        return {name.replace("__", "/"): b for name, b in self._buffers.items()}

    def rows(self, index: Tensor) -> dict[str, Tensor]:
        """The features of the items ``index`` only (keys as in :func:`catalog_tensors`):
        rows of the per-item tensors, and each text column's CSR bags of those items
        (``text_offsets/<k>`` ``[len(index) + 1]``, ``text_ids/<k>`` their bucket ids)."""
        features = self.features()
        out: dict[str, Tensor] = {}
        for key, value in features.items():
            if key.startswith("text_ids/"):
                continue
            if not key.startswith("text_offsets/"):
                out[key] = value[index]
                continue
            column = key.split("/", 1)[1]
            starts, ends = value[index], value[index + 1]
            lengths = ends - starts  # [R] bag sizes
            offsets = torch.zeros(len(index) + 1, dtype=value.dtype, device=value.device)
            torch.cumsum(lengths, 0, out=offsets[1:])
            # position j of the new bags reads old id starts[r] + (j - offsets[r])
            within = torch.arange(int(offsets[-1]), device=value.device) - torch.repeat_interleave(
                offsets[:-1], lengths
            )
            out[f"text_ids/{column}"] = features[f"text_ids/{column}"][
                torch.repeat_interleave(starts, lengths) + within
            ]
            out[key] = offsets
        return out

    def _load_from_state_dict(  # type: ignore[override]
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        # empty buffers of the saved shapes, which the default loader then fills
        self._replace_buffers(
            {
                k[len(prefix) :]: torch.empty_like(v)
                for k, v in state_dict.items()
                if k.startswith(prefix) and "." not in k[len(prefix) :]
            }
        )
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )


class ContentEncoder(nn.Module):
    r"""Item content -> a :math:`d`-dimensional content vector :math:`\mathbf{c}_i`.

    Each feature of item :math:`i` is mapped to :math:`\mathbb{R}^d` and the maps are
    summed:

    .. math::

        \mathbf{c}_i = \sum_{f \in \text{cat}} \mathbf{E}_f[x_{i,f}]
            + \sum_{t \in \text{text}} \frac{1}{|B_{i,t}|} \sum_{g \in B_{i,t}}
              \mathbf{T}_t[g]
            + \mathbf{W}_{num} [\mathbf{z}_i ; \mathbf{m}_i] + \mathbf{b}
            + \sum_{v \in \text{vec}} \mathbf{W}_v \mathbf{u}_{i,v}

    with categorical codes :math:`x_{i,f}` (code 0, unknown, has the fixed zero row of
    :math:`\mathbf{E}_f`), hashed n-gram bags :math:`B_{i,t}` (an empty bag gives 0),
    standardised numbers :math:`\mathbf{z}_i` and their missing flags
    :math:`\mathbf{m}_i`, and precomputed vectors :math:`\mathbf{u}_{i,v}`.

    Summing (rather than concatenating and projecting) is a concatenation followed by
    one linear map whose blocks are the per-feature maps: the same function class with
    no extra :math:`(\sum_f d) \times d` matrix, and the width of :math:`\mathbf{c}_i`
    does not grow with the number of columns. Non-linear mixing is left to the layers
    that consume :math:`\mathbf{c}_i`.

    Args:
        dim: content vector size ``d``.
        cardinalities: embedding rows of each categorical column (codes incl. 0).
        text_buckets: hash buckets of each text column.
        n_numeric: number of numeric columns ``N``.
        vector_dims: width of each vector column.

    Shapes:
        - input: the dict of :func:`catalog_tensors` (``n`` items)
        - output: ``[n, d]``
    """

    def __init__(
        self,
        dim: int,
        cardinalities: list[int] | tuple[int, ...] = (),
        text_buckets: list[int] | tuple[int, ...] = (),
        n_numeric: int = 0,
        vector_dims: list[int] | tuple[int, ...] = (),
    ) -> None:
        super().__init__()
        if not (cardinalities or text_buckets or n_numeric or vector_dims):
            raise ValueError("ContentEncoder: the catalog has no feature columns")
        self.dim = dim
        self.categorical = nn.ModuleList(nn.Embedding(c, dim, padding_idx=0) for c in cardinalities)
        self.text = nn.ModuleList(
            nn.EmbeddingBag(b, dim, mode="mean", include_last_offset=True) for b in text_buckets
        )
        self.numeric = nn.Linear(2 * n_numeric, dim) if n_numeric else None
        self.vector = nn.ModuleList(nn.Linear(v, dim, bias=False) for v in vector_dims)
        self.reset_parameters()

    @classmethod
    def from_catalog(cls, catalog: ItemCatalog, dim: int) -> ContentEncoder:
        """An encoder sized for ``catalog``'s columns."""
        return cls(dim, **content_sizes(catalog))

    def reset_parameters(self) -> None:
        std = 1.0 / math.sqrt(self.dim)
        for emb in self.categorical:
            nn.init.normal_(emb.weight, std=std)
            with torch.no_grad():
                emb.weight[0].zero_()  # the unknown code contributes nothing
        for bag in self.text:
            nn.init.normal_(bag.weight, std=std)
        if self.numeric is not None:
            self.numeric.reset_parameters()
        for lin in self.vector:
            lin.reset_parameters()

    def forward(self, features: dict[str, Tensor]) -> Tensor:
        n = features["categorical"].shape[0]
        out = features["categorical"].new_zeros((n, self.dim), dtype=torch.float32)
        codes = features["categorical"]  # [n, C]
        for k, emb in enumerate(self.categorical):
            out = out + emb(codes[:, k])
        for k, bag in enumerate(self.text):
            out = out + bag(features[f"text_ids/{k}"], features[f"text_offsets/{k}"])
        if self.numeric is not None:
            out = out + self.numeric(features["numeric"])
        for k, lin in enumerate(self.vector):
            out = out + lin(features[f"vector/{k}"])
        return out  # [n, d]


class ItemRepresentation(nn.Module):
    r"""Item vectors from an id embedding and a content vector, with id dropout.

    .. math::

        \mathbf{v}_i = \delta_i\, \mathbf{e}_i + (1 - \delta_i)\, \bar{\mathbf{e}}
            + \mathbf{W} \mathbf{c}_i,
        \qquad
        \delta_i = \begin{cases}
            0 & \text{item } i \text{ has no clicks (``cold_mask``)} \\
            \mathrm{Bernoulli}(1 - p) & \text{training} \\
            1 & \text{evaluation}
        \end{cases}

    Dropping the id part of random items during training (DropoutNet, Volkovs et al.,
    NeurIPS 2017) makes the content-only vector :math:`\mathbf{W}\mathbf{c}_i` of an
    item score like its full vector, so items without clicks (whose
    :math:`\mathbf{e}_i` is never trained) live in the same space as trained ones. The
    kept id parts are *not* rescaled by :math:`1/(1-p)`: a cold item at evaluation gets
    exactly what dropped items got in training. The id table starts at zero
    (``id_init="zeros"``), so content initialises the item table.

    The missing id part :math:`\bar{\mathbf{e}}` is :math:`\mathbf{0}`
    (``id_impute="zero"``) or the mean id embedding of the items with clicks
    (``id_impute="mean"``): an item without clicks then starts as "an average item with
    this content" rather than as a pure content prototype, which the session embeddings
    of its category lie closest to (on the synthetic data: new items recommended less
    often, warm targets more often).

    Args:
        num_items: rows of the id table ``n`` (all items, cold ones included).
        dim: item vector size ``d``.
        content_dim: content vector size ``d_c``.
        id_dropout: :math:`p`, the probability of dropping an item's id part in training.
        id_init: ``"zeros"`` or ``"uniform"`` (:math:`U(-1/\sqrt{d}, 1/\sqrt{d})`, as
            SR-GNN initialises its item table).
        content_scale: :math:`\mathbf{W}` starts at this multiple of PyTorch's default
            ``Linear`` initialisation.
        id_impute: ``"zero"`` or ``"mean"``: :math:`\bar{\mathbf{e}}` above.

    Shapes:
        - input: content ``[n, d_c]``, optional ``cold_mask`` bool ``[n]``
        - output: ``[n, d]``
    """

    def __init__(
        self,
        num_items: int,
        dim: int,
        content_dim: int,
        id_dropout: float = 0.5,
        id_init: str = "zeros",
        content_scale: float = 1.0,
        id_impute: str = "zero",
    ) -> None:
        super().__init__()
        if not 0.0 <= id_dropout <= 1.0:
            raise ValueError(f"id_dropout must be in [0, 1], got {id_dropout!r}")
        if id_init not in ("zeros", "uniform"):
            raise ValueError(f"id_init must be 'zeros' or 'uniform', got {id_init!r}")
        if id_impute not in ("zero", "mean"):
            raise ValueError(f"id_impute must be 'zero' or 'mean', got {id_impute!r}")
        self.id_impute = id_impute
        self.num_items = num_items
        self.dim = dim
        self.id_dropout = id_dropout
        self.id_init = id_init
        self.content_scale = content_scale
        self.id_embedding = nn.Embedding(num_items, dim)
        self.content_proj = nn.Linear(content_dim, dim, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.id_init == "zeros":
            nn.init.zeros_(self.id_embedding.weight)
        else:
            bound = 1.0 / math.sqrt(self.dim)
            nn.init.uniform_(self.id_embedding.weight, -bound, bound)
        self.content_proj.reset_parameters()
        with torch.no_grad():
            self.content_proj.weight.mul_(self.content_scale)

    def id_keep_mask(self, cold_mask: Tensor | None = None) -> Tensor:
        r""":math:`\delta` as float ``[n, 1]`` (random in training mode)."""
        n = self.num_items
        device = self.id_embedding.weight.device
        if self.training and self.id_dropout > 0:
            keep = torch.rand(n, device=device) >= self.id_dropout
        else:
            keep = torch.ones(n, dtype=torch.bool, device=device)
        if cold_mask is not None:
            keep = keep & ~cold_mask.to(device)
        return keep.to(self.id_embedding.weight.dtype).unsqueeze(1)

    def forward(self, content: Tensor, cold_mask: Tensor | None = None) -> Tensor:
        if content.shape[0] != self.num_items:
            raise ValueError(
                f"content has {content.shape[0]} rows but the id table {self.num_items}"
            )
        weight = self.id_embedding.weight  # [n, d]
        keep = self.id_keep_mask(cold_mask)  # [n, 1]
        ids = weight * keep
        if self.id_impute == "mean":  # a missing id part is the average clicked item's
            clicked = (
                torch.ones_like(keep) if cold_mask is None else (~cold_mask).to(keep).unsqueeze(1)
            )  # [n, 1]
            mean = (weight * clicked).sum(0) / clicked.sum().clamp(min=1.0)  # [d]
            ids = ids + (1.0 - keep) * mean
        return ids + self.content_proj(content)  # [n, d]

    def rows(
        self, content: Tensor, index: Tensor, cold_rows: Tensor | None = None, sparse: bool = False
    ) -> Tensor:
        r"""The rows ``index`` of :meth:`forward` (``[R, d]``), from their content
        ``[R, d_c]`` and their entries of ``cold_mask`` (``cold_rows``): the id rows are
        gathered (sparse gradients with ``sparse``), dropped with probability :math:`p`
        per row in training, and with ``id_impute="mean"`` a missing id part is the mean
        id part of those rows that have clicks (an estimate of the mean over all items)."""
        ids = F.embedding(index, self.id_embedding.weight, sparse=sparse)  # [R, d]
        keep = torch.ones(len(index), dtype=torch.bool, device=ids.device)
        if self.training and self.id_dropout > 0:
            keep = torch.rand(len(index), device=ids.device) >= self.id_dropout
        if cold_rows is not None:
            keep = keep & ~cold_rows.to(ids.device)
        keep_f = keep.to(ids.dtype).unsqueeze(1)  # [R, 1]
        out = ids * keep_f
        if self.id_impute == "mean":
            clicked = (
                torch.ones_like(keep_f)
                if cold_rows is None
                else (~cold_rows).to(keep_f).unsqueeze(1)
            )
            mean = (ids * clicked).sum(0) / clicked.sum().clamp(min=1.0)  # [d]
            out = out + (1.0 - keep_f) * mean
        return out + self.content_proj(content)  # [R, d]

    def extra_repr(self) -> str:
        return f"{self.num_items}, {self.dim}, id_dropout={self.id_dropout}"
