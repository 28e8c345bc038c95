r"""Sharded datasets: dumps larger than memory, prepared and trained one shard at a time.

:func:`prepare_sharded` applies the ``default`` protocol of
:mod:`sessionrec.data.protocol` to a dump without ever holding it whole:

1. one streaming pass splits the dump by session into :math:`B` buckets on disk
   (:func:`~sessionrec.data.ingest.read_click_buckets`, :math:`h(\text{session}) \bmod B`;
   :math:`B` = clicks / ``clicks_per_shard`` rounded up, unless ``n_shards`` is given);
2. then four passes over the buckets, one bucket in memory at a time, do the protocol's
   steps exactly: sessions ordered and too-short ones dropped, item support summed over
   the buckets (a table of items, not of clicks); rare items and sessions left short
   dropped, the latest session time :math:`T` found; the split
   :math:`\tau = T - 86400 \cdot` ``test_days`` applied and the training item ids
   collected; the vocabulary (the sorted training ids) indexed into each shard.

Memory is bounded by one bucket plus tables over items, whatever the size of the dump.
The result is the same sessions and samples as :func:`~sessionrec.data.protocol.prepare`
(the same vocabulary; within a shard sessions are in time order), spread over shards.

On disk (``sessionrec prepare --shard-clicks N --out DIR``)::

    DIR/
      dataset.json      format "sessionrec.sharded/1", counts, protocol, report, and per
                        shard: file, sha256, training sessions / clicks, test samples
      vocab.json        the item vocabulary
      shard-00000.npz   training sessions and test samples of shard 0 (the arrays of a
      ...               prepared dataset's arrays.npz: numeric, no pickle)

The trainer (:class:`~sessionrec.train.Trainer`) reads one shard at a time: every epoch
visits the shards in a random order and shuffles the samples within each; the validation
split takes the latest ``valid_fraction`` of the sessions of each shard (shards are
random sets of sessions, so together they are the latest sessions overall, to within
sampling noise; a single-shard dataset gives exactly
:func:`~sessionrec.data.dataset.validation_split`). Only the ``default`` protocol is
sharded (the ``srgnn`` protocol reproduces a script whose quirks depend on the whole
file's order).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from sessionrec.artifacts import file_sha256
from sessionrec.data.dataset import (
    FORMAT as DATASET_FORMAT,
)
from sessionrec.data.dataset import (
    SessionDataset,
    load_samples,
    load_sessions,
    read_dataset_meta,
    replace_directory,
    save_arrays,
)
from sessionrec.data.ingest import ColumnMap, OnBadRows, describe_timestamp, read_click_buckets
from sessionrec.data.protocol import (
    DAY_S,
    ProtocolConfig,
    _ids_array,
    _index,
    _last_clicks,
    _plain,
    _sessions_in_time_order,
)
from sessionrec.data.sessions import ChunkedSamples, Samples, Sessions
from sessionrec.data.vocab import ItemVocab
from sessionrec.errors import ArtifactError, ConfigError, EmptyDataError

__all__ = ["ShardedDataset", "prepare_sharded", "load_dataset", "in_memory", "FORMAT"]

FORMAT = "sessionrec.sharded/1"
#: Clicks per shard when neither a shard count nor a size is given.
DEFAULT_CLICKS_PER_SHARD = 2_000_000


@dataclass
class ShardedDataset:
    """A prepared dataset on disk in shards; one shard is read at a time.

    Attributes:
        directory: the dataset folder.
        vocab: raw item id of every index.
        shards: per shard: ``file``, ``sha256``, ``train_sessions``, ``train_clicks``,
            ``test_samples``.
        meta: provenance and counts (``dataset.json``).
    """

    directory: Path
    vocab: ItemVocab
    shards: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_items(self) -> int:
        return len(self.vocab)

    @property
    def n_shards(self) -> int:
        return len(self.shards)

    def _path(self, i: int) -> Path:
        """Shard ``i``'s file, checked against its SHA-256 in ``dataset.json``."""
        shard = self.shards[i]
        path = self.directory / shard["file"]
        if not path.is_file():
            raise ArtifactError(f"{self.directory}: shard file {shard['file']} is missing")
        if file_sha256(path) != shard["sha256"]:
            raise ArtifactError(
                f"{path}: does not match its SHA-256 in dataset.json (modified or "
                "corrupted); prepare the dataset again"
            )
        return path

    def train_shard(self, i: int) -> Sessions:
        """The training sessions of shard ``i`` (in time order)."""
        return load_sessions(self._path(i))

    def test_shard(self, i: int) -> Samples:
        """The test samples of shard ``i``."""
        return load_samples(self._path(i))

    @property
    def test(self) -> ChunkedSamples:
        """Every test sample, one shard at a time."""
        n = sum(int(s["test_samples"]) for s in self.shards)
        return ChunkedSamples(self.test_shard, self.n_shards, n)

    def stats(self) -> dict[str, Any]:
        """Counts under the keys of :meth:`SessionDataset.stats`."""
        return dict(self.meta["stats"])

    def fingerprint(self) -> str:
        """SHA-256 over the shards' SHA-256 and the vocabulary: identifies the data."""
        h = hashlib.sha256()
        for shard in self.shards:
            h.update(shard["sha256"].encode())
        h.update(json.dumps(self.vocab.to_json()).encode())
        return h.hexdigest()

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> ShardedDataset:
        """Open a sharded dataset (shards are read, and verified, when used)."""
        directory = Path(directory)
        meta = read_dataset_meta(directory)
        if meta.get("format") != FORMAT:
            raise ArtifactError(
                f"{directory / 'dataset.json'}: format {meta.get('format')!r}, expected {FORMAT!r}"
            )
        shards = meta.get("shards")
        if not isinstance(shards, list) or not shards:
            raise ArtifactError(f"{directory / 'dataset.json'}: lists no shards")
        vocab = ItemVocab.load(directory / "vocab.json")
        rest = {k: v for k, v in meta.items() if k not in ("format", "shards")}
        return cls(directory, vocab, shards, rest)


def load_dataset(directory: str | os.PathLike[str]) -> SessionDataset | ShardedDataset:
    """A prepared dataset folder, in memory (:class:`SessionDataset`) or sharded."""
    directory = Path(directory)
    fmt = read_dataset_meta(directory).get("format")
    if fmt == FORMAT:
        return ShardedDataset.load(directory)
    if fmt == DATASET_FORMAT:
        return SessionDataset.load(directory)
    raise ArtifactError(
        f"{directory / 'dataset.json'}: format {fmt!r}; this sessionrec reads "
        f"{DATASET_FORMAT!r} and {FORMAT!r}"
    )


def in_memory(dataset: SessionDataset | ShardedDataset, what: str) -> SessionDataset:
    """``dataset`` if it is held in memory; a sharded one is refused for ``what``.

    Raises:
        ConfigError: ``dataset`` is sharded.
    """
    if isinstance(dataset, ShardedDataset):
        raise ConfigError(
            f"{what}: the dataset must be in memory, and {dataset.directory} is sharded (prepared "
            "with --shard-clicks): prepare it again without --shard-clicks"
        )
    return dataset


# -- preparing ---------------------------------------------------------------------------
def _n_sessions(frame: pl.DataFrame) -> int:
    return frame.get_column("session_id").n_unique() if frame.height else 0


def _add(rep: dict[str, Any], **counts: int) -> None:
    for key, n in counts.items():
        rep[key] = rep.get(key, 0) + int(n)


def prepare_sharded(
    clicks: str | os.PathLike[str] | pl.DataFrame | pl.LazyFrame,
    out: str | os.PathLike[str],
    config: ProtocolConfig | None = None,
    *,
    n_shards: int | None = None,
    clicks_per_shard: int = DEFAULT_CLICKS_PER_SHARD,
    format: str = "auto",
    columns: ColumnMap | None = None,
    separator: str | None = None,
    on_bad_rows: OnBadRows = "error",
    event_types: Sequence[str] | None = None,
    session_gap_s: float | None = None,
    progress: bool = False,
) -> ShardedDataset:
    """Apply the ``default`` protocol to a dump of any size; write a sharded dataset.

    Args:
        clicks: the dump (a file, or a polars frame), read as by
            :func:`~sessionrec.data.ingest.read_clicks` (exact duplicates dropped).
        out: the dataset folder; built next to it and renamed into place when complete
            (an existing dataset there is replaced only then).
        config: the protocol (``mode="default"``).
        n_shards: the number of shards; default: clicks / ``clicks_per_shard``, rounded up.
        clicks_per_shard: the shard size aimed at (it bounds the memory used).
        other arguments: as in :func:`~sessionrec.data.protocol.prepare`.

    Returns:
        The :class:`ShardedDataset` written to ``out``.

    Raises:
        ConfigError: the ``srgnn`` protocol, or bad shard counts.
        SchemaError, BadRowsError, EmptyDataError: as :func:`~sessionrec.data.protocol.prepare`.
    """
    from tqdm.auto import tqdm

    config = config if config is not None else ProtocolConfig()
    if config.mode != "default":
        raise ConfigError(
            "sharded preparation follows the default protocol only; the srgnn protocol "
            "reproduces a script that reads the whole file (prepare it without shards)"
        )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        work = staging / "work"
        buckets = read_click_buckets(
            clicks,
            work / "buckets",
            n_buckets=n_shards,
            clicks_per_bucket=clicks_per_shard,
            format=format,
            columns=columns,
            separator=separator,
            on_bad_rows=on_bad_rows,
            event_types=event_types,
            session_gap_s=session_gap_s,
        )
        cfg = config.resolved(buckets.format)
        assert cfg.test_days is not None
        k, n = cfg.min_session_length, buckets.n_buckets
        rep: dict[str, Any] = {"mode": cfg.mode, "test_days": cfg.test_days, "shards": n}
        bar = tqdm(
            total=4 * n, desc="prepare (shards)", unit="pass", disable=not progress,
            file=sys.stderr, leave=False,
        )  # fmt: skip

        def stage(name: str, i: int) -> Path:
            return work / f"{name}-{i:05d}.parquet"

        # pass A: order clicks, drop short sessions, count item support
        support = pl.DataFrame(
            schema={"item_id": buckets.plan.plan.collect_schema()["item_id"], "len": pl.UInt32}
        )
        for i in range(n):
            frame = buckets.read(i).frame
            frame = frame.select("session_id", "item_id", "timestamp", "row_nr").sort(
                "session_id", "timestamp", "row_nr"
            )
            frame = frame.with_columns(_first_row=pl.col("row_nr").min().over("session_id")).drop(
                "row_nr"
            )
            sessions_in, clicks_in = _n_sessions(frame), frame.height
            frame = frame.filter(pl.len().over("session_id") >= k)
            _add(
                rep,
                clicks_in=clicks_in,
                sessions_in=sessions_in,
                sessions_too_short=sessions_in - _n_sessions(frame),
            )
            counts = frame.group_by("item_id").len().cast({"len": pl.UInt32})
            support = pl.concat([support, counts]).group_by("item_id").agg(pl.col("len").sum())
            frame.write_parquet(stage("a", i))
            bar.update()
        shutil.rmtree(work / "buckets")
        rep["items_below_support"] = support.filter(pl.col("len") < cfg.min_item_support).height
        supported = support.filter(pl.col("len") >= cfg.min_item_support).get_column("item_id")
        supported_list = supported.implode()  # once, not per bucket
        del support

        # pass B: drop rare items and sessions left short; session times
        last, first = -np.inf, np.inf
        for i in range(n):
            frame = pl.read_parquet(stage("a", i))
            before, sessions_before = frame.height, _n_sessions(frame)
            frame = frame.filter(pl.col("item_id").is_in(supported_list))
            clicks_left = frame.height
            frame = frame.filter(pl.len().over("session_id") >= k)
            frame = frame.with_columns(_time=pl.col("timestamp").last().over("session_id"))
            spans = frame.group_by("session_id").agg(
                (pl.col("timestamp").last() - pl.col("timestamp").first()).alias("span")
            )
            _add(
                rep,
                clicks_on_rare_items=before - clicks_left,
                sessions_too_short_after_item_filter=sessions_before - _n_sessions(frame),
                sessions_spanning_over_1_day=int((spans.get_column("span") > DAY_S).sum()),
            )
            if frame.height:
                last = max(last, float(frame.get_column("_time").max()))  # type: ignore[arg-type]
                first = min(first, float(frame.get_column("_time").min()))  # type: ignore[arg-type]
            frame.write_parquet(stage("b", i))
            stage("a", i).unlink()
            bar.update()
        if not np.isfinite(last):
            raise EmptyDataError(
                f"no session keeps {k} clicks on items with >= {cfg.min_item_support} "
                "clicks; lower --min-item-support, or check the session and item columns"
            )
        split = last - DAY_S * cfg.test_days
        rep["split_time"] = split
        rep["split_time_utc"] = describe_timestamp(split)

        # pass C: the split; training sessions keep their last L clicks; training ids
        train_ids = pl.Series("item_id", [], dtype=supported.dtype)
        test_sessions_in_split: list[int] = []
        for i in range(n):
            frame = pl.read_parquet(stage("b", i))
            train = frame.filter(pl.col("_time") < split)
            test = frame.filter(pl.col("_time") >= split)
            train, cut = _last_clicks(train, cfg.max_session_length)
            test_sessions_in_split.append(_n_sessions(test))
            _add(rep, train_sessions=_n_sessions(train), clicks_cut_by_max_session_length=cut)
            train_ids = pl.concat([train_ids, train.get_column("item_id").unique()]).unique()
            train.write_parquet(stage("train", i))
            test.write_parquet(stage("test", i))
            stage("b", i).unlink()
            bar.update()
        rep["test_sessions_in_split"] = sum(test_sessions_in_split)
        if rep["train_sessions"] == 0:
            span = (last - first) / DAY_S
            raise EmptyDataError(
                f"every session falls within the last {cfg.test_days:g} days (the sessions "
                f"span {span:.2f} days), so nothing is left to train on; lower --test-days"
            )
        ids = train_ids.sort()
        del train_ids

        # pass D: index with the vocabulary; test filters; shards written
        shards: list[dict[str, Any]] = []
        totals = {"train_clicks": 0, "train_samples": 0, "test_samples": 0, "test_sessions": 0}
        for i in range(n):
            train = pl.read_parquet(stage("train", i))
            test = pl.read_parquet(stage("test", i))
            train, test, unseen = _index(train, test, ids, k)
            test, cut = _last_clicks(test, cfg.max_session_length)
            _add(
                rep,
                test_clicks_on_unseen_items=unseen,
                test_sessions_too_short_after_unseen_filter=test_sessions_in_split[i]
                - _n_sessions(test),
                clicks_cut_by_max_session_length=cut,
            )
            train_sessions = _sessions_in_time_order(train)
            samples = _sessions_in_time_order(test).to_samples()
            if samples.session_index is not None:  # unique over the whole dataset
                samples = Samples(
                    samples.items,
                    samples.offsets,
                    samples.targets,
                    samples.session_index + totals["test_sessions"],
                    samples.times,
                )
            stage("train", i).unlink()
            stage("test", i).unlink()
            bar.update()
            if len(train_sessions) == 0 and len(samples) == 0:
                continue  # an empty bucket
            name = f"shard-{len(shards):05d}.npz"
            save_arrays(staging / name, train_sessions, samples)
            shards.append(
                {
                    "file": name,
                    "sha256": file_sha256(staging / name),
                    "train_sessions": len(train_sessions),
                    "train_clicks": train_sessions.n_clicks,
                    "test_samples": len(samples),
                }
            )
            totals["train_clicks"] += train_sessions.n_clicks
            totals["train_samples"] += train_sessions.n_samples
            totals["test_samples"] += len(samples)
            totals["test_sessions"] += len(np.unique(samples.session_index))
        bar.close()
        if totals["test_samples"] == 0:
            raise EmptyDataError(
                f"no test samples: none of the {rep['test_sessions_in_split']} sessions of "
                f"the last {cfg.test_days:g} days keeps {cfg.min_session_length} clicks on "
                "training items; raise --test-days or lower --min-item-support"
            )
        shutil.rmtree(work)

        if cfg.max_session_length is None:
            rep.pop("clicks_cut_by_max_session_length", None)
        vocab = ItemVocab(_ids_array(ids))
        vocab.save(staging / "vocab.json")
        rep.update(totals)
        rep["items"] = len(vocab)
        stats = {
            "train_sessions": rep["train_sessions"],
            "test_sessions": rep["test_sessions_in_split"],
            "test_sessions_with_samples": totals["test_sessions"],
            "items": len(vocab),
            "train_samples": totals["train_samples"],
            "test_samples": totals["test_samples"],
            "train_clicks": totals["train_clicks"],
            "avg_train_session_length": totals["train_clicks"] / rep["train_sessions"],
        }
        meta = {
            "format": FORMAT,
            "source": buckets.report.source,
            "clicks_format": buckets.format,
            "protocol": cfg.to_dict(),
            "times": "last click, Unix s",
            "report": {"ingest": buckets.report.to_dict(), "protocol": _plain(rep)},
            "stats": stats,
            "shards": shards,
        }
        (staging / "dataset.json").write_text(json.dumps(meta, indent=2, default=str))
        replace_directory(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ShardedDataset.load(out)
