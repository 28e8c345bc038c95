"""Stable hashing of catalog values: 64-bit FNV-1a, text tokens, hash buckets.

:math:`\\mathrm{fnv}` is 64-bit FNV-1a over the UTF-8 bytes (:func:`fnv1a_64`): stable
across processes, platforms and library versions (unlike Python's ``hash()``). The tokens
of a text (:func:`text_tokens`) and the hashed categorical codes are described in
:mod:`sessionrec.data.catalog`.

This module imports numpy and polars; it is not imported by the serving path.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

__all__ = ["fnv1a_64", "hash_buckets", "text_tokens"]

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
_MAX_WORD_CHARS = 32
_HASH_CHUNK = 1 << 18


def fnv1a_64(strings: Sequence[str] | np.ndarray) -> np.ndarray:
    """64-bit FNV-1a of each string's UTF-8 bytes, as uint64 ``[n]``.

    .. math:: h_0 = \\texttt{0xcbf29ce484222325}, \\quad
              h_{k+1} = (h_k \\oplus b_k) \\cdot \\texttt{0x100000001b3} \\bmod 2^{64}

    Vectorised over strings (a loop over byte positions only). The strings must be valid
    Unicode (as polars' are); trailing NUL characters are ignored (numpy's fixed-width
    bytes drop them).
    """
    array = np.asarray(strings, dtype=object)
    out = np.empty(len(array), dtype=np.uint64)
    for start in range(0, len(array), _HASH_CHUNK):  # bounds the fixed-width copy
        out[start : start + _HASH_CHUNK] = _fnv1a_64_chunk(array[start : start + _HASH_CHUNK])
    return out


def _fnv1a_64_chunk(array: np.ndarray) -> np.ndarray:
    if len(array) == 0:
        return np.zeros(0, dtype=np.uint64)
    encoded = np.char.encode(array.astype(str), "utf-8")  # bytes, fixed width S{w}
    width = encoded.dtype.itemsize
    lengths = np.char.str_len(encoded)
    h = np.full(len(array), _FNV_OFFSET, dtype=np.uint64)
    data = np.frombuffer(encoded.tobytes(), dtype=np.uint8).reshape(len(array), width)
    with np.errstate(over="ignore"):
        for j in range(width):
            live = lengths > j
            h = np.where(live, (h ^ data[:, j].astype(np.uint64)) * _FNV_PRIME, h)
    return h


def hash_buckets(strings: Sequence[str] | np.ndarray, n_buckets: int) -> np.ndarray:
    """:math:`\\mathrm{fnv}(s) \\bmod` ``n_buckets`` of each string, as int64 ``[n]``."""
    return (fnv1a_64(strings) % np.uint64(n_buckets)).astype(np.int64)


def text_tokens(
    texts: pl.Series, char_ngrams: Sequence[int] = (3,), word_bigrams: bool = True
) -> pl.DataFrame:
    """The n-gram tokens of each text: a frame ``(row UInt32, token String)``.

    Tokens are described in the :mod:`sessionrec.data.catalog` docstring; rows without
    words have none.
    """
    words = (
        pl.DataFrame({"text": texts.cast(pl.String)})
        .with_row_index("row")
        .select(
            "row",
            pl.col("text").str.to_lowercase().str.extract_all(r"\w+").alias("word"),
        )
        .explode("word")
        .drop_nulls("word")
        .with_columns(pl.col("word").str.slice(0, _MAX_WORD_CHARS))
    )
    parts = [words.select("row", ("w:" + pl.col("word")).alias("token"))]
    if word_bigrams:
        nxt = pl.col("word").shift(-1).over("row")
        parts.append(
            words.select("row", ("b:" + pl.col("word") + " " + nxt).alias("token")).drop_nulls()
        )
    padded = words.select("row", ("<" + pl.col("word") + ">").alias("g"))
    padded = padded.with_columns(pl.col("g").str.len_chars().alias("len"))
    for n in char_ngrams:
        grams = (
            padded.filter(pl.col("len") >= n)
            .with_columns(pl.int_ranges(0, pl.col("len") - n + 1).alias("start"))
            .explode("start")
            .select("row", ("c:" + pl.col("g").str.slice(pl.col("start"), n)).alias("token"))
        )
        parts.append(grams)
    return pl.concat(parts).sort("row", maintain_order=True)
