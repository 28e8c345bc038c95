"""Choose the repeat bonus of a trained model on validation, after the fact.

``sessionrec train`` does this itself since ``TrainConfig.repeat_bonus_grid`` exists (the
``default`` config tries 0, 1, 2, 4, 8, 12 on validation with the selected checkpoint and
gives the value to the refit). For a model trained before, or a refit whose selection
run is a separate model directory, this script does the same by hand:

1. ``--select DIR``: a model trained on the training split *without* the validation
   sessions (a selection run); the bonus is chosen with it on the validation split (the
   latest 10 % of training sessions), never on test;
2. ``--model DIR``: the model that gets the chosen bonus (e.g. the refit on all training
   sessions), written to ``--out DIR`` with ``repeat_bonus`` in its config and the
   calibration table in ``metrics.json`` (``repeat_bonus``).

Usage::

    python benchmarks/repeat_bonus.py --path ../shared/datasets/diginetica \\
        --select runs/digi-default --model runs/digi-default-refit --out runs/digi-default-rb

then ``sessionrec evaluate --model runs/digi-default-rb --benchmark srgnn-pickle --path ...``
for the test metrics. One JSON object (the calibration) goes to stdout.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

import torch

from sessionrec.data.benchmarks import load_benchmark
from sessionrec.data.dataset import validation_split
from sessionrec.train import calibrate_repeat_bonus, config_preset, load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--path", required=True, help="Diginetica SR-GNN pickle folder")
    parser.add_argument("--select", required=True, help="selection model directory")
    parser.add_argument("--model", required=True, help="model directory to give the bonus")
    parser.add_argument("--out", required=True, help="where to write that model with it")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    dataset = load_benchmark("srgnn-pickle", args.path)
    selection = load_model(args.select)
    cfg, contract = selection.train_config, selection.data_contract
    _, valid = validation_split(
        dataset.train, contract.validation_fraction, contract.max_session_length
    )
    grid = config_preset("default", dataset.n_items)[1].repeat_bonus_grid
    chosen = calibrate_repeat_bonus(
        selection.model,
        valid,
        grid,
        cfg.select_metric,
        cfg.eval_batch_size,
        contract.inference_max_length,
    )
    target = load_model(args.model)
    target.model.config = replace(target.model.config, repeat_bonus=chosen["selected"])
    target.metrics = {**target.metrics, "repeat_bonus": {**chosen, "chosen_with": args.select}}
    target.save(args.out)
    print(json.dumps({"selected": chosen["selected"], "valid": chosen["valid"], "out": args.out}))


if __name__ == "__main__":
    main()
