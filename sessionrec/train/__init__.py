"""Training SR-GNN: configuration, the training loop, model evaluation and calibration,
warm starts, distributed training and the model directory.

=====================  =================================================================
module                 what it holds
=====================  =================================================================
``config``             :class:`TrainConfig`, the presets (:func:`config_preset`),
                       ``NAME=VALUE`` overrides (:func:`apply_overrides`)
``trainer``            :class:`Trainer`: epochs, validation, early stopping,
                       checkpoints, calibration, refit, the final test
``training_data``      the samples of each epoch and the validation samples, in memory
                       or from shards
``evaluation``         :func:`evaluate_model` and the calibrations on validation
                       (repeat bonus, new-item offset)
``warm``               the model's vocabulary and :func:`warm_start` from a previous model
``distributed``        devices, ``torchrun`` process groups, collectives
``model_dir``          :class:`TrainedModel`, its save and :func:`load_model`
``report``             the training report of ``sessionrec fit`` (``report.json``,
                       ``training.png``)
=====================  =================================================================
"""

from sessionrec.train.config import (
    CONFIGS,
    TrainConfig,
    apply_overrides,
    config_preset,
    lr_factor,
    with_catalog,
)
from sessionrec.train.distributed import (
    init_distributed,
    leave_distributed,
    once_per_node,
    resolve_device,
)
from sessionrec.train.evaluation import (
    MIN_NEW_ITEM_TARGETS,
    calibrate_new_item_offset,
    calibrate_repeat_bonus,
    evaluate_model,
    item_logits,
)
from sessionrec.train.model_dir import MODEL_FILES, MODEL_FORMAT, TrainedModel, load_model
from sessionrec.train.trainer import Trainer
from sessionrec.train.warm import (
    check_data_items,
    check_warm_start,
    extends_vocab,
    model_vocab,
    warm_start,
)

__all__ = [
    "CONFIGS",
    "MIN_NEW_ITEM_TARGETS",
    "MODEL_FILES",
    "MODEL_FORMAT",
    "TrainConfig",
    "TrainedModel",
    "Trainer",
    "apply_overrides",
    "calibrate_new_item_offset",
    "calibrate_repeat_bonus",
    "check_data_items",
    "check_warm_start",
    "config_preset",
    "evaluate_model",
    "extends_vocab",
    "init_distributed",
    "item_logits",
    "leave_distributed",
    "load_model",
    "lr_factor",
    "model_vocab",
    "once_per_node",
    "resolve_device",
    "warm_start",
    "with_catalog",
]
