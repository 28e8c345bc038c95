"""sessionrec: session-based next-item recommendation.

SR-GNN (Wu et al., AAAI 2019) on torch-geometric, trained from clickstream dumps and
exported to one ONNX file that services run with onnxruntime alone.

The top-level namespace is lazy: ``from sessionrec import SessionRecommender`` never
imports torch, so serving code stays torch-free.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sessionrec.version import __version__

# public name -> module that defines it (imported on first access)
_LAZY: dict[str, str] = {
    "SessionrecError": "sessionrec.errors",
    "SchemaError": "sessionrec.errors",
    "BadRowsError": "sessionrec.errors",
    "EmptyDataError": "sessionrec.errors",
    "UnsafePickleError": "sessionrec.errors",
    "ArtifactError": "sessionrec.errors",
    "ConfigError": "sessionrec.errors",
    "NonFiniteError": "sessionrec.errors",
    "Sessions": "sessionrec.data.sessions",
    "Samples": "sessionrec.data.sessions",
    "SessionDataset": "sessionrec.data.dataset",
    "ItemVocab": "sessionrec.data.vocab",
    "validation_split": "sessionrec.data.dataset",
    "load_benchmark": "sessionrec.data.benchmarks",
    "session_graph_batch": "sessionrec.graph",
    "SRGNN": "sessionrec.nn.srgnn",
    "SRGNNConfig": "sessionrec.nn.srgnn",
    "Trainer": "sessionrec.train",
    "TrainConfig": "sessionrec.train",
    "TrainedModel": "sessionrec.train",
    "config_preset": "sessionrec.train",
    "apply_overrides": "sessionrec.train",
    "load_model": "sessionrec.train",
    "evaluate_model": "sessionrec.train",
    "SessionRecommender": "sessionrec.recommender",
    "NextItems": "sessionrec.recommender",
    "read_clicks": "sessionrec.data.ingest",
    "ColumnMap": "sessionrec.data.presets",
    "ProtocolConfig": "sessionrec.data.protocol",
    "DataContract": "sessionrec.data.contract",
    "prepare": "sessionrec.data.protocol",
    "read_catalog": "sessionrec.data.catalog",
    "ItemCatalog": "sessionrec.data.catalog",
    "make_baseline": "sessionrec.evaluate.baselines",
    "evaluate_recommender": "sessionrec.evaluate.evaluation",
    "export_onnx": "sessionrec.onnx_export",
}

__all__ = ["__version__", *_LAZY]

if TYPE_CHECKING:  # pragma: no cover
    from sessionrec.data.benchmarks import load_benchmark
    from sessionrec.data.catalog import ItemCatalog, read_catalog
    from sessionrec.data.contract import DataContract
    from sessionrec.data.dataset import SessionDataset, validation_split
    from sessionrec.data.ingest import read_clicks
    from sessionrec.data.presets import ColumnMap
    from sessionrec.data.protocol import ProtocolConfig, prepare
    from sessionrec.data.sessions import Samples, Sessions
    from sessionrec.data.vocab import ItemVocab
    from sessionrec.errors import (
        ArtifactError,
        BadRowsError,
        ConfigError,
        EmptyDataError,
        NonFiniteError,
        SchemaError,
        SessionrecError,
        UnsafePickleError,
    )
    from sessionrec.evaluate.baselines import make_baseline
    from sessionrec.evaluate.evaluation import evaluate_recommender
    from sessionrec.graph import session_graph_batch
    from sessionrec.nn.srgnn import SRGNN, SRGNNConfig
    from sessionrec.onnx_export import export_onnx
    from sessionrec.recommender import SessionRecommender
    from sessionrec.train import (
        TrainConfig,
        TrainedModel,
        Trainer,
        apply_overrides,
        config_preset,
        evaluate_model,
        load_model,
    )


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sessionrec' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
