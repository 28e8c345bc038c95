"""Fuzzing the inputs users hand us beyond the click reader (tests/test_ingest.py fuzzes
that): item catalogs and the whole protocol. Whatever comes in, the result is a valid
object or a ``SessionrecError``; no other exception, no hang (hypothesis' deadline).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionrec.data.catalog import ItemCatalog, read_catalog
from sessionrec.data.protocol import ProtocolConfig, prepare
from sessionrec.errors import SessionrecError

# SESSIONREC_FUZZ_EXAMPLES=5000 for a long hunt; CI runs 120 examples per test
SETTINGS = settings(
    max_examples=int(os.environ.get("SESSIONREC_FUZZ_EXAMPLES", "120")),
    deadline=5000,
    suppress_health_check=[HealthCheck.too_slow],
)

cell = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.text(max_size=8),
    st.sampled_from(["", "NA", "null", "[1.0, 2.0]", "[]", "é", "\u00a0", "a,b", '"q"']),
)


def check_catalog(catalog: ItemCatalog) -> None:
    assert len(catalog) >= 1
    assert len(np.unique(np.asarray(catalog.ids, dtype=object))) == len(catalog)
    for feature in catalog.numeric.values():
        assert np.isfinite(feature.values).all()


@SETTINGS
@given(st.binary(max_size=300), st.sampled_from(["i.csv", "i.tsv", "i.parquet", "i.ndjson"]))
def test_catalog_from_random_bytes(data, name):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        for on_bad in ("error", "skip"):
            try:
                check_catalog(read_catalog(path, on_bad_rows=on_bad))
            except SessionrecError:
                pass


@SETTINGS
@given(
    st.lists(st.tuples(cell, cell, cell, cell), max_size=8),
    st.sampled_from(["error", "first"]),
    st.booleans(),
)
def test_catalog_from_random_rows(table, duplicates, roles):
    text = "item_id,category,title,price\n" + "".join(
        ",".join(c.replace(",", " ").replace("\n", " ") for c in row) + "\n" for row in table
    )
    kwargs = {"categorical": ["category"], "text": ["title"], "numeric": ["price"]} if roles else {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "items.csv"
        path.write_text(text, encoding="utf-8")
        for on_bad in ("error", "skip"):
            try:
                check_catalog(
                    read_catalog(path, on_bad_rows=on_bad, duplicate_ids=duplicates, **kwargs)
                )
            except SessionrecError:
                pass


click = st.tuples(
    st.one_of(st.integers(-5, 2**63 + 5), st.sampled_from([1, 2, 3])),  # session
    st.one_of(st.integers(-(2**63) - 5, 2**63 + 5), st.sampled_from([7, 8, 9])),  # item
    st.one_of(
        st.floats(min_value=-1e12, max_value=1e12),
        st.sampled_from([float("nan"), float("inf"), -float("inf")]),
        st.sampled_from([0.0, 1.0, 86_400.0, 3 * 86_400.0]),
    ),  # seconds
)


@SETTINGS
@given(
    st.lists(click, max_size=30),
    st.sampled_from(["default", "srgnn"]),
    st.one_of(st.none(), st.integers(2, 4)),
)
def test_prepare_random_clickstreams(table, mode, max_length):
    """Ingestion and the protocol together: a dataset whose arrays are consistent, or
    a sessionrec error (bad rows, nothing left after the filters, ...)."""
    config = ProtocolConfig(
        mode=mode,
        min_item_support=1,  # keep items of tiny tables, so that datasets come out
        test_days=1,
        max_session_length=max_length if mode == "default" else None,
    )
    frame = pl.DataFrame(
        {
            "session_id": [str(s) for s, _, _ in table],
            "item_id": [str(i) for _, i, _ in table],
            "timestamp": [t for _, _, t in table],
        },
        schema={"session_id": pl.String, "item_id": pl.String, "timestamp": pl.Float64},
    )
    for on_bad in ("error", "skip"):
        try:
            dataset = prepare(frame, config, on_bad_rows=on_bad)
        except SessionrecError:
            continue
        n = dataset.n_items
        assert n == len(dataset.vocab) >= 1
        for array in (dataset.train.items, dataset.test.items, dataset.test.targets):
            assert array.size == 0 or (array.min() >= 0 and array.max() < n)
        assert (dataset.train.lengths >= 1).all()
