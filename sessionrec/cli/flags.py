"""The command-line flag of every API option that library errors name.

Library errors name the API option that fixes them (``SessionrecError.options``, e.g.
``"ColumnMap.session"``); :data:`FLAGS` gives the command line's flag for each, and
:func:`flag_hint` turns them into the line the CLI adds to the message
(``tests/test_architecture.py`` checks that every option named has a flag or is listed
as set by the Python API alone).
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["FLAGS", "flag_for", "flag_hint"]

#: API option (``Class.field`` or ``function.parameter``) -> the flag that sets it.
FLAGS: dict[str, str] = {
    # reading clickstream dumps (sessionrec.data.ingest.read_clicks, ColumnMap)
    "read_clicks.source": "--clicks FILE",
    "read_clicks.format": "--format NAME",
    "read_clicks.separator": "--separator C",
    "read_clicks.on_bad_rows": "--on-bad-rows skip",
    "read_clicks.event_types": "--event-types A,B",
    "read_clicks.session_gap_s": "--session-gap-s SECONDS",
    "ColumnMap.session": "--session-col NAME",
    "ColumnMap.item": "--item-col NAME",
    "ColumnMap.time": "--time-col NAME",
    "ColumnMap.time_unit": "--time-unit UNIT",
    "ColumnMap.date": "--date-col NAME",
    "ColumnMap.offset": "--offset-col NAME",
    "ColumnMap.offset_unit": "--offset-unit UNIT",
    "ColumnMap.event": "--event-col NAME",
    "ColumnMap.category": "--category-col NAME",
    "ColumnMap.user": "--user-col NAME",
    "ColumnMap.id_type": "--id-type str|int",
    # the protocol (sessionrec.data.protocol.ProtocolConfig, prepare_sharded)
    "ProtocolConfig.mode": "--protocol MODE",
    "ProtocolConfig.test_days": "--test-days N",
    "ProtocolConfig.min_item_support": "--min-item-support N",
    "ProtocolConfig.min_session_length": "--min-session-length N",
    "ProtocolConfig.max_session_length": "--max-session-length L",
    "ProtocolConfig.validation_fraction": "--validation-fraction F",
    "ProtocolConfig.keep_new_items": "--keep-new-items",
    "prepare.catalog": "--catalog FILE",
    "prepare_sharded.clicks_per_shard": "--shard-clicks N",
    "SessionDataset.save.directory": "--out DIR",
    "SessionDataset.save.overwrite": "--force",
    # item catalogs (sessionrec.data.catalog.read_catalog)
    "read_catalog.source": "--catalog FILE",
    "read_catalog.item_col": "--catalog-item-col NAME",
    "read_catalog.categorical": "--catalog-categorical COLS",
    "read_catalog.text": "--catalog-text COLS",
    "read_catalog.numeric": "--catalog-numeric COLS",
    "read_catalog.vector": "--catalog-vector COLS",
    "read_catalog.duplicate_ids": "--catalog-duplicates first",
    # published benchmarks (sessionrec.data.benchmarks.load_benchmark)
    "load_benchmark.name": "--benchmark NAME",
    "load_benchmark.path": "--path DIR",
    # training (sessionrec.train)
    "config_preset.name": "--config NAME",
    "TrainConfig": "--set NAME=VALUE",
    "SRGNNConfig": "--set NAME=VALUE",
    "TrainConfig.epochs": "--epochs N",
    "TrainConfig.batch_size": "--batch-size N",
    "TrainConfig.lr": "--lr RATE",
    "TrainConfig.patience": "--patience N",
    "TrainConfig.seed": "--seed N",
    "TrainConfig.device": "--device cpu|cuda|auto",
    "TrainConfig.validation_fraction": "--validation-fraction F",
    "TrainConfig.refit": "--refit",
    "TrainConfig.bf16_scoring": "--bf16",
    "Trainer.max_minutes": "--max-minutes M",
    "Trainer.fit.resume": "--resume",
    "Trainer.fit.warm_start": "--warm-start MODEL_DIR",
    "Trainer.fit.catalog": "--catalog FILE",
    # export (sessionrec.onnx_export.export_onnx)
    "export_onnx.model": "--model MODEL_DIR",
    "export_onnx.out_path": "--out FILE",
    "export_onnx.opset": "--opset N",
    "export_onnx.item_table_dtype": "--item-table fp32|fp16|int8",
    "export_onnx.max_session_length": "--max-session-length L",
    "export_onnx.external_data": "--external-data",
    "export_onnx.ann": "--ann / --no-ann",
    "export_onnx.ann_codes": "--ann-codes auto|flat|pq4",
    # serving (sessionrec.recommender.SessionRecommender)
    "SessionRecommender.load.threads": "--threads N",
    "SessionRecommender.load.exact": "--exact",
    "SessionRecommender.load.nprobe": "--nprobe N",
    # baselines (sessionrec.evaluate.baselines)
    "make_baseline.method": "--method NAME",
    "make_baseline.params": "--param NAME=VALUE",
}
# config fields set by name: TrainConfig.X / SRGNNConfig.X -> --set X=VALUE; a baseline's
# constructor parameter Class.X -> --param X=VALUE (its fit arguments have no flag), for
# the baselines `sessionrec baseline --method` offers
_SET_BY_NAME = {"TrainConfig": "--set", "SRGNNConfig": "--set"}


def _baseline_classes() -> set[str]:
    """The class names of the baselines ``sessionrec baseline --method`` offers (read when
    an error is printed: importing the baselines costs a tenth of a second)."""
    from sessionrec.cli.baseline_commands import METHODS
    from sessionrec.evaluate.baselines import BASELINES

    return {BASELINES[method].__name__ for method in METHODS}


def flag_for(option: str) -> str | None:
    """The command-line flag of the API ``option`` (``"ColumnMap.session"`` ->
    ``"--session-col NAME"``), or ``None`` when only the Python API sets it."""
    if option in FLAGS:
        return FLAGS[option]
    owner, _, field = option.partition(".")
    if owner in _SET_BY_NAME and field:
        return f"{_SET_BY_NAME[owner]} {field}=VALUE"
    if field and "." not in field and owner in _baseline_classes():
        return f"--param {field}=VALUE"
    return None


def flag_hint(options: Iterable[str]) -> str:
    """The command-line flags of API ``options`` as one line (``""`` when none has one)."""
    flags = list(dict.fromkeys(f for o in options if (f := flag_for(o)) is not None))
    return "" if not flags else "on the command line: " + ", ".join(flags)
