"""Clean a dump's clicks: exact duplicate rows, and sessions cut at inactivity gaps.

The rules (documented; :mod:`sessionrec.data.ingest` applies them to every dump):

- **Exact duplicate rows** (equal in every mapped column) are dropped, keeping the first,
  and counted (``duplicates_dropped``); ``drop_duplicates=False`` keeps them (the
  ``srgnn`` protocol does, as the authors' script did). See
  :func:`drop_exact_duplicates`.
- Sessions cut by inactivity (RetailRocket, or ``session_gap_s``): a user's (or a
  session's) clicks, in time order, start a new session after a gap longer than
  ``session_gap_s``; such sessions get new Int64 ids ``0, 1, ...``. See
  :func:`cut_sessions_at_gaps`.

This module imports polars; it is not imported by the serving path.
"""

from __future__ import annotations

import polars as pl

from sessionrec.errors import ConfigError

__all__ = ["drop_exact_duplicates", "cut_sessions_at_gaps"]


def drop_exact_duplicates(frame: pl.DataFrame) -> pl.DataFrame:
    """Drop rows equal to an earlier row (by ``row_nr``) in every column but ``row_nr``.

    Exact, with little memory: rows are hashed (8 bytes each), only rows whose hash
    occurs twice are compared column by column, and the earliest of equal rows stays.
    The order of the rows is kept.
    """
    subset = [c for c in frame.columns if c != "row_nr"]
    hashes = frame.select(pl.struct(subset).hash(seed=0)).to_series()
    ordered = hashes.sort()
    repeated = ordered.filter((ordered == ordered.shift(1)).fill_null(False)).unique()
    if len(repeated) == 0:
        return frame
    candidates = frame.with_row_index("__sessionrec_pos").filter(hashes.is_in(repeated.implode()))
    later = candidates.sort("row_nr").filter(~pl.struct(subset).is_first_distinct())
    if later.height == 0:
        return frame
    drop = later.get_column("__sessionrec_pos")
    return (
        frame.with_row_index("__sessionrec_pos")
        .filter(~pl.col("__sessionrec_pos").is_in(drop.implode()))
        .drop("__sessionrec_pos")
    )


def cut_sessions_at_gaps(
    frame: pl.DataFrame, gap_s: float, by: str = "session_id"
) -> tuple[pl.DataFrame, int]:
    """Cut each ``by`` group's clicks (in time order) after gaps longer than ``gap_s``.

    A click starts a new session when it belongs to another ``by`` value than the click
    before it, or when it comes more than ``gap_s`` seconds after it. Sessions get new
    Int64 ids ``0, 1, ...`` in ``(by, time)`` order.

    Returns:
        ``(frame with a new session_id, number of sessions added by the cuts)``.

    Raises:
        ConfigError: ``gap_s`` is not positive.
    """
    if not gap_s > 0:
        raise ConfigError(
            f"session_gap_s must be > 0 seconds, got {gap_s}",
            options=("read_clicks.session_gap_s",),
        )
    before = frame.get_column(by).n_unique() if frame.height else 0
    ordered = frame.sort([by, "timestamp", "row_nr"])
    starts = pl.col(by).ne_missing(pl.col(by).shift(1)) | (
        pl.col("timestamp").diff().fill_null(0.0) > gap_s
    )
    cut = ordered.with_columns(session_id=(starts.cum_sum() - 1).cast(pl.Int64))
    after = int(cut.get_column("session_id").max() or -1) + 1 if cut.height else 0
    return cut, after - before
