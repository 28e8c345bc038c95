"""Full against sampled softmax on a planted catalog: validation and test metrics after
the same epochs (README, "Large catalogs").

    python benchmarks/sampled_accuracy.py --items 100000 --clicks 500000 --epochs 2

A planted clickstream (:mod:`sessionrec.data.planted`) is prepared with
``ProtocolConfig(min_item_support=2, test_days=1)``; the ``default`` config trains once
per loss (``--loss full,sampled``), seed 42, one thread; one JSON line per loss.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from sessionrec.data.planted import PlantedConfig, planted_clicks
from sessionrec.data.protocol import ProtocolConfig, prepare
from sessionrec.train import Trainer, config_preset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--clicks", type=int, default=500_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--loss", default="sampled,full")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    clicks = planted_clicks(PlantedConfig(n_items=args.items, n_clicks=args.clicks, seed=0))
    dataset = prepare(clicks, ProtocolConfig(min_item_support=2, test_days=1))
    print(json.dumps({"stats": dataset.stats()}), flush=True)
    for loss in args.loss.split(","):
        model_config, train_config = config_preset(
            "default", dataset.n_items, epochs=args.epochs, patience=10, loss=loss, seed=42
        )
        cpu = time.process_time()
        trained = Trainer(model_config, train_config, progress=False).fit(dataset)
        record = {
            "loss": loss,
            "cpu_s": time.process_time() - cpu,
            "valid": [{k: h["valid"][k] for k in ("hr@20", "mrr@20")} for h in trained.history],
            "epoch_seconds": [h["seconds"] for h in trained.history],
            "test": {k: trained.metrics["test"][k] for k in ("hr@20", "mrr@20")},
        }
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
