r"""Sharded datasets: dumps larger than memory, prepared and trained one shard at a time.

:func:`prepare_sharded` applies the ``default`` protocol of
:mod:`sessionrec.data.protocol` to a dump without ever holding it whole:

1. one streaming pass splits the dump by session into :math:`B` buckets on disk
   (:func:`~sessionrec.data.ingest.read_click_buckets`, :math:`h(\text{session}) \bmod B`;
   :math:`B` = clicks / ``clicks_per_shard`` rounded up, unless ``n_shards`` is given);
2. then four passes over the buckets, one bucket in memory at a time, do the protocol's
   steps exactly (with the steps of :mod:`sessionrec.data.protocol_steps`):

   A. (:func:`_pass_a`) sessions ordered and too-short ones dropped, item support summed
      over the buckets (a table of items, not of clicks);
   B. (:func:`_pass_b`) rare items and sessions left short dropped, the latest session
      time :math:`T` found;
   C. (:func:`_pass_c`) the split :math:`\tau = T - 86400 \cdot` ``test_days`` applied
      and the training item ids collected;
   D. (:func:`_pass_d`) the vocabulary (the sorted training ids) indexed into each
      bucket, test clicks on unseen items and test sessions left short dropped, test
      prefixes cut to their last ``max_session_length`` clicks, and the shards written;

3. the vocabulary and ``dataset.json`` are written (:func:`_write_dataset`).

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
split takes the latest ``validation_fraction`` of the sessions of each shard (shards are
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
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
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
    check_replaceable,
    load_samples,
    load_sessions,
    new_build_directory,
    read_dataset_meta,
    replace_directory,
    save_arrays,
)
from sessionrec.data.ingest import ClickBuckets, read_click_buckets
from sessionrec.data.parsing import OnBadRows
from sessionrec.data.presets import ColumnMap
from sessionrec.data.protocol import ProtocolConfig, resolve_new_items
from sessionrec.data.protocol_steps import (
    DAY_S,
    catalog_id_series,
    clicks_on,
    cut_prefixes,
    fit_default_window,
    ids_array,
    index_items,
    no_supported_sessions,
    no_test_samples,
    no_training_left,
    plain_report,
    sessions_in_time_order,
    split_time,
    with_new_items,
    with_session_times,
)
from sessionrec.data.sessions import ChunkedSamples, Samples, Sessions
from sessionrec.data.vocab import ItemVocab
from sessionrec.errors import ArtifactError, ConfigError

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
            "by prepare_sharded): prepare it again in memory, with sessionrec.prepare(...) "
            "rather than prepare_sharded (the command line's prepare without its shard size)"
        )
    return dataset


# -- preparing ---------------------------------------------------------------------------
def _n_sessions(frame: pl.DataFrame) -> int:
    return frame.get_column("session_id").n_unique() if frame.height else 0


def _add(rep: dict[str, Any], **counts: int) -> None:
    for key, n in counts.items():
        rep[key] = rep.get(key, 0) + int(n)


@dataclass
class _Passes:
    """What the passes over the buckets share: the working folder (one file per pass and
    bucket), the bucket count, the resolved protocol, its report and the progress bar."""

    work: Path
    n: int
    cfg: ProtocolConfig
    rep: dict[str, Any]
    bar: Any
    new_items: pl.Series | None = None  # the vocabulary's new items (pass C), if kept

    def stage(self, name: str, i: int) -> Path:
        """The file of bucket ``i`` after pass ``name``."""
        return self.work / f"{name}-{i:05d}.parquet"


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
    overwrite: bool = False,
    catalog: Any = None,
) -> ShardedDataset:
    """Apply the ``default`` protocol to a dump of any size; write a sharded dataset.

    The dump is split into buckets, then passes A-D run over them and the dataset is
    written, one function each (the numbered passes of the module docstring).

    Args:
        clicks: the dump (a file, or a polars frame), read as by
            :func:`~sessionrec.data.ingest.read_clicks` (exact duplicates dropped).
        out: the dataset folder; built next to it and renamed into place when complete
            (an existing dataset there is replaced only then).
        config: the protocol (``mode="default"``).
        n_shards: the number of shards; default: clicks / ``clicks_per_shard``, rounded up.
        clicks_per_shard: the shard size aimed at (it bounds the memory used).
        overwrite: replace a folder ``out`` that is not a prepared dataset (and the files
            in it); without it, such a folder is refused before any work.
        catalog: keeps the test clicks on new items, as in
            :func:`~sessionrec.data.protocol.prepare`.
        other arguments: as in :func:`~sessionrec.data.protocol.prepare`.

    Returns:
        The :class:`ShardedDataset` written to ``out``.

    Raises:
        ArtifactError: ``out`` holds other files and ``overwrite`` is off.
        ConfigError: the ``srgnn`` protocol, or bad shard counts.
        SchemaError, BadRowsError, EmptyDataError: as :func:`~sessionrec.data.protocol.prepare`.
    """
    from tqdm.auto import tqdm

    config = config if config is not None else ProtocolConfig()
    if config.mode != "default":
        raise ConfigError(
            "sharded preparation follows the default protocol only; the srgnn protocol "
            "reproduces a script that reads the whole file (prepare it without shards)",
            options=("ProtocolConfig.mode",),
        )
    out = Path(out)
    check_replaceable(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = new_build_directory(out)
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
        cfg = resolve_new_items(config.resolved(buckets.format), catalog)
        assert cfg.test_days is not None
        n = buckets.n_buckets
        rep: dict[str, Any] = {"mode": cfg.mode, "test_days": cfg.test_days, "shards": n}
        bar = tqdm(
            total=4 * n, desc="prepare (shards)", unit="pass", disable=not progress,
            file=sys.stderr, leave=False,
        )  # fmt: skip
        passes = _Passes(work, n, cfg, rep, bar)
        supported = _pass_a(passes, buckets)
        last, first = _pass_b(passes, supported)
        if config.test_days is None:
            test_days, shortened = fit_default_window(
                cfg.test_days, (last - first) / DAY_S, buckets.report.source
            )
            cfg = passes.cfg = replace(cfg, test_days=test_days)
            rep.update(test_days=test_days, **shortened)
        split = split_time(last, cfg.test_days, rep)
        catalog_ids = (
            catalog_id_series(getattr(catalog, "ids", catalog), supported.dtype)
            if cfg.keep_new_items
            else None
        )
        ids, test_sessions_in_split = _pass_c(
            passes, split, supported.dtype, last - first, catalog_ids
        )
        del supported
        shards, totals = _pass_d(passes, ids, test_sessions_in_split, staging)
        bar.close()
        if totals["test_samples"] == 0:
            raise no_test_samples(
                rep["test_sessions_in_split"], cfg.test_days, cfg.min_session_length
            )
        shutil.rmtree(work)
        _write_dataset(staging, passes, buckets, ids, shards, totals)
        replace_directory(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ShardedDataset.load(out)


def _pass_a(passes: _Passes, buckets: ClickBuckets) -> pl.Series:
    """Pass A: order clicks, drop short sessions, count item support.

    Returns:
        the supported item ids (at least ``min_item_support`` clicks over all buckets).
    """
    k, rep, stage = passes.cfg.min_session_length, passes.rep, passes.stage
    support = pl.DataFrame(
        schema={"item_id": buckets.plan.plan.collect_schema()["item_id"], "len": pl.UInt32}
    )
    for i in range(passes.n):
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
        passes.bar.update()
    shutil.rmtree(passes.work / "buckets")
    min_support = passes.cfg.min_item_support
    rep["items_below_support"] = support.filter(pl.col("len") < min_support).height
    return support.filter(pl.col("len") >= min_support).get_column("item_id")


def _pass_b(passes: _Passes, supported: pl.Series) -> tuple[float, float]:
    """Pass B: drop rare items and sessions left short; session times.

    Returns:
        ``(latest, earliest)`` session time.

    Raises:
        EmptyDataError: no session is left.
    """
    k, rep, stage = passes.cfg.min_session_length, passes.rep, passes.stage
    supported_list = supported.implode()  # once, not per bucket
    last, first = -np.inf, np.inf
    for i in range(passes.n):
        frame = pl.read_parquet(stage("a", i))
        before, sessions_before = frame.height, _n_sessions(frame)
        frame = frame.filter(pl.col("item_id").is_in(supported_list))
        clicks_left = frame.height
        frame = frame.filter(pl.len().over("session_id") >= k)
        frame, spanning = with_session_times(frame)
        _add(
            rep,
            clicks_on_rare_items=before - clicks_left,
            sessions_too_short_after_item_filter=sessions_before - _n_sessions(frame),
            sessions_spanning_over_1_day=spanning,
        )
        if frame.height:
            last = max(last, float(frame.get_column("_time").max()))  # type: ignore[arg-type]
            first = min(first, float(frame.get_column("_time").min()))  # type: ignore[arg-type]
        frame.write_parquet(stage("b", i))
        stage("a", i).unlink()
        passes.bar.update()
    if not np.isfinite(last):
        raise no_supported_sessions(k, passes.cfg.min_item_support)
    return last, first


def _pass_c(
    passes: _Passes,
    split: float,
    id_dtype: pl.DataType,
    span_s: float,
    catalog_ids: pl.Series | None = None,
) -> tuple[pl.Series, list[int]]:
    """Pass C: the split; the training item ids (then the new items, with
    ``catalog_ids``).

    Returns:
        ``(the vocabulary: sorted training item ids, then the new items; test sessions
        of each bucket)``.

    Raises:
        EmptyDataError: no training session (the sessions span ``span_s`` seconds).
    """
    cfg, rep, stage = passes.cfg, passes.rep, passes.stage
    train_ids = pl.Series("item_id", [], dtype=id_dtype)
    test_ids = pl.Series("item_id", [], dtype=id_dtype)
    test_sessions_in_split: list[int] = []
    for i in range(passes.n):
        frame = pl.read_parquet(stage("b", i))
        train = frame.filter(pl.col("_time") < split)
        test = frame.filter(pl.col("_time") >= split)
        test_sessions_in_split.append(_n_sessions(test))
        _add(rep, train_sessions=_n_sessions(train))
        train_ids = pl.concat([train_ids, train.get_column("item_id").unique()]).unique()
        if catalog_ids is not None:
            test_ids = pl.concat([test_ids, test.get_column("item_id").unique()]).unique()
        train.write_parquet(stage("train", i))
        test.write_parquet(stage("test", i))
        stage("b", i).unlink()
        passes.bar.update()
    rep["test_sessions_in_split"] = sum(test_sessions_in_split)
    if rep["train_sessions"] == 0:
        raise no_training_left(cfg.test_days, span_s / DAY_S)
    ids, n_new = with_new_items(train_ids, test_ids, catalog_ids)
    if catalog_ids is not None:
        rep["new_items"] = n_new
        passes.new_items = ids.slice(len(ids) - n_new)
    return ids, test_sessions_in_split


def _pass_d(
    passes: _Passes, ids: pl.Series, test_sessions_in_split: list[int], staging: Path
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Pass D: index with the vocabulary ``ids``; test filters; shards written to
    ``staging`` (empty buckets give no shard).

    Returns:
        ``(the shards' entries in dataset.json, totals over the shards)``.
    """
    cfg, rep, stage = passes.cfg, passes.rep, passes.stage
    k = cfg.min_session_length
    shards: list[dict[str, Any]] = []
    totals = {"train_clicks": 0, "train_samples": 0, "test_samples": 0, "test_sessions": 0}
    for i in range(passes.n):
        train = pl.read_parquet(stage("train", i))
        test = pl.read_parquet(stage("test", i))
        if passes.new_items is not None:
            _add(rep, test_clicks_on_new_items=clicks_on(test, passes.new_items))
        train, test, unseen = index_items(train, test, ids, k)
        train_sessions = sessions_in_time_order(train)
        samples, cut = cut_prefixes(
            sessions_in_time_order(test).to_samples(), cfg.max_session_length
        )
        _add(
            rep,
            test_clicks_on_unseen_items=unseen,
            test_sessions_too_short_after_unseen_filter=test_sessions_in_split[i]
            - _n_sessions(test),
            test_prefixes_cut_by_max_session_length=cut,
        )
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
        passes.bar.update()
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
    return shards, totals


def _write_dataset(
    staging: Path,
    passes: _Passes,
    buckets: ClickBuckets,
    ids: pl.Series,
    shards: list[dict[str, Any]],
    totals: dict[str, int],
) -> None:
    """The vocabulary (``vocab.json``) and ``dataset.json`` (counts, protocol, report,
    shards) written to ``staging``."""
    cfg, rep = passes.cfg, passes.rep
    if cfg.max_session_length is None:
        rep.pop("test_prefixes_cut_by_max_session_length", None)
    vocab = ItemVocab(ids_array(ids))
    vocab.save(staging / "vocab.json")
    # stats() calls the sessions of the test period test_sessions: this count has its own name
    rep.update({k: v for k, v in totals.items() if k != "test_sessions"})
    rep["test_sessions_with_samples"] = totals["test_sessions"]
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
        "report": {"ingest": buckets.report.to_dict(), "protocol": plain_report(rep)},
        "stats": stats,
        "shards": shards,
    }
    (staging / "dataset.json").write_text(json.dumps(meta, indent=2, default=str))
