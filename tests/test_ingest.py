"""Reading clickstream dumps: formats, presets, column maps, timestamps and bad input.

Hand-computed examples first (each preset and file kind), then every bad-input case with
its error, then hypothesis properties: whatever bytes a file holds, reading it gives a
result or a sessionrec error, never another exception.
"""

from __future__ import annotations

import gzip
import math
import tempfile
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionrec.data.cleaning import cut_sessions_at_gaps, drop_exact_duplicates
from sessionrec.data.ingest import read_clicks
from sessionrec.data.parsing import BAD_ROW_REASONS, MAX_TIMESTAMP_S
from sessionrec.data.presets import PRESETS, ColumnMap
from sessionrec.errors import (
    BadRowsError,
    ConfigError,
    EmptyDataError,
    SchemaError,
    SessionrecError,
)

D_2016_05_09 = 1462752000  # 2016-05-09T00:00:00Z


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def rows(clicks) -> list[tuple]:
    return list(clicks.frame.select("session_id", "item_id", "timestamp").iter_rows())


# -- a generic CSV ----------------------------------------------------------------------
def test_generic_csv_gives_canonical_columns(tmp_path):
    f = write(
        tmp_path / "clicks.csv", "session_id,item_id,timestamp\n1,10,100\n1,11,160.5\n2,10,90\n"
    )
    c = read_clicks(f)
    assert c.format == "generic"
    assert c.frame.columns == ["session_id", "item_id", "timestamp", "row_nr"]
    assert c.frame.schema["session_id"] == pl.Int64 and c.frame.schema["item_id"] == pl.Int64
    assert rows(c) == [(1, 10, 100.0), (1, 11, 160.5), (2, 10, 90.0)]
    assert c.frame["row_nr"].to_list() == [0, 1, 2]
    assert c.report.rows_read == 3 and c.report.rows == 3 and c.report.time_unit == "s"


def test_string_item_ids_stay_strings(tmp_path):
    f = write(tmp_path / "c.csv", "session,item,time\ns1,A-1,100\ns1,007,101\n")
    c = read_clicks(f)
    assert c.report.item_id_kind == "str" and c.report.session_id_kind == "str"
    assert c.frame["item_id"].to_list() == ["A-1", "007"]  # "007" is not turned into 7


def test_zero_padded_ids_stay_strings(tmp_path):
    # every id is integer text, but "007" would become 7 (tests/test_id_kinds.py)
    f = write(tmp_path / "c.csv", "session,item,time\n1,007,100\n1,7,101\n")
    c = read_clicks(f)
    assert c.report.item_id_kind == "str" and c.report.session_id_kind == "int"
    assert c.report.item_id_kind_reason == "leading zeros ('007') would be lost as integers"
    assert c.frame["item_id"].to_list() == ["007", "7"]


def test_column_map_with_unusual_names(tmp_path):
    f = write(tmp_path / "c.csv", "visit|sku|when\n5|x|1000\n5|y|2000\n")
    c = read_clicks(f, columns=ColumnMap(session="visit", item="sku", time="when", time_unit="ms"))
    assert c.report.separator == "|"
    assert rows(c) == [(5, "x", 1.0), (5, "y", 2.0)]


def test_whitespace_bom_and_crlf_are_tolerated(tmp_path):
    f = write(tmp_path / "c.csv", "\ufeffsession_id , item_id,timestamp\r\n 1 , 2 ,3\r\n1,4,5\r\n")
    assert rows(read_clicks(f)) == [(1, 2, 3.0), (1, 4, 5.0)]


# -- timestamps -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2014-04-07T10:51:09.277Z", 1396867869.277),
        ("2014-04-07T10:51:09Z", 1396867869.0),
        ("2014-04-07T12:51:09+02:00", 1396867869.0),  # offsets are converted to UTC
        ("2014-04-07T10:51:09", 1396867869.0),  # no zone: read as UTC
        ("2014-04-07 10:51:09.5", 1396867869.5),
        ("2014-04-07", 1396828800.0),
    ],
)
def test_iso_8601_timestamps(tmp_path, text, seconds):
    f = write(tmp_path / "c.csv", f"session_id,item_id,timestamp\n1,2,{text}\n")
    c = read_clicks(f, columns=ColumnMap(time_unit="iso"))
    assert c.frame["timestamp"][0] == pytest.approx(seconds, abs=1e-6)


def test_time_unit_auto_tells_every_unit(tmp_path):
    s = write(tmp_path / "s.csv", "session_id,item_id,timestamp\n1,2,1396867869.5\n")
    ms = write(tmp_path / "ms.csv", "session_id,item_id,timestamp\n1,2,1396867869500\n")
    us = write(tmp_path / "us.csv", "session_id,item_id,timestamp\n1,2,1396867869500000\n")
    ns = write(tmp_path / "ns.csv", "session_id,item_id,timestamp\n1,2,1396867869500000000\n")
    iso = write(tmp_path / "iso.csv", "session_id,item_id,timestamp\n1,2,2014-04-07T10:51:09.5Z\n")
    for path, unit in ((s, "s"), (ms, "ms"), (us, "us"), (ns, "ns"), (iso, "iso")):
        c = read_clicks(path)
        assert c.report.time_unit == unit
        assert c.frame["timestamp"][0] == pytest.approx(1396867869.5)


def test_date_plus_offset_columns(tmp_path):
    f = write(tmp_path / "c.csv", "s,i,d,off\n1,2,2016-05-09,1500\n")
    m = ColumnMap(session="s", item="i", date="d", offset="off", offset_unit="ms")
    c = read_clicks(f, columns=m)
    assert c.frame["timestamp"][0] == D_2016_05_09 + 1.5
    assert c.frame["day"][0] == D_2016_05_09 and c.frame["day_offset"][0] == 1.5


# -- presets ----------------------------------------------------------------------------
YOOCHOOSE = (
    "1,2014-04-07T10:51:09.277Z,214536502,0\n"
    "1,2014-04-07T10:54:09.868Z,214536500,0\n"
    "2,2014-04-07T13:56:37.614Z,214662742,S\n"
)


@pytest.mark.parametrize("header", ["", "session_id,timestamp,item_id,category\n"])
@pytest.mark.parametrize("format", ["yoochoose", "auto"])
def test_yoochoose_preset(tmp_path, format, header):
    f = write(tmp_path / "yoochoose-clicks.dat", header + YOOCHOOSE)
    c = read_clicks(f, format)
    assert c.format == "yoochoose"
    assert rows(c) == [
        (1, 214536502, pytest.approx(1396867869.277)),
        (1, 214536500, pytest.approx(1396868049.868)),
        (2, 214662742, pytest.approx(1396878997.614)),
    ]
    assert c.frame["category"].to_list() == ["0", "0", "S"]


DIGINETICA = (
    "session_id;user_id;item_id;timeframe;eventdate\n"
    "1;NA;81766;526309;2016-05-09\n"
    "1;NA;31331;1031018;2016-05-09\n"
    "2;7;32118;243569;2016-05-10\n"
)


@pytest.mark.parametrize("format", ["diginetica", "auto"])
def test_diginetica_preset_is_local_midnight_plus_timeframe(tmp_path, format):
    c = read_clicks(write(tmp_path / "train-item-views.csv", DIGINETICA), format)
    assert c.format == "diginetica" and c.report.separator == ";"
    assert rows(c) == [
        (1, 81766, D_2016_05_09 + 526.309),
        (1, 31331, D_2016_05_09 + 1031.018),
        (2, 32118, D_2016_05_09 + 86400 + 243.569),
    ]
    assert c.frame["day"].to_list() == [D_2016_05_09, D_2016_05_09, D_2016_05_09 + 86400]


RETAILROCKET = (
    "timestamp,visitorid,event,itemid,transactionid\n"
    "1433221332117,1,view,100,\n"
    "1433221932117,1,view,101,\n"  # +10 min: same session
    "1433224332117,1,view,102,\n"  # +40 min: a new session
    "1433224392117,1,addtocart,102,\n"
    "1433221000000,2,view,100,\n"
    "1433221100000,2,transaction,100,4000\n"
)


@pytest.mark.parametrize("format", ["retailrocket", "auto"])
def test_retailrocket_cuts_sessions_after_30_minutes_and_keeps_views(tmp_path, format):
    c = read_clicks(write(tmp_path / "events.csv", RETAILROCKET), format)
    assert c.format == "retailrocket"
    assert c.report.rows_other_events == 2 and c.report.event_types == ["view"]
    got = sorted(rows(c), key=lambda r: r[2])
    # sessions numbered in (visitor, time) order: visitor 1 -> 0 and 1, visitor 2 -> 2
    assert [(s, i) for s, i, _ in got] == [(2, 100), (0, 100), (0, 101), (1, 102)]
    assert got[0][2] == 1433221000.0
    assert c.report.sessions_cut_at_gaps == 1


def test_retailrocket_event_types_are_selectable(tmp_path):
    f = write(tmp_path / "events.csv", RETAILROCKET)
    c = read_clicks(f, "retailrocket", event_types=["view", "addtocart", "transaction"])
    assert len(c) == 6 and c.report.rows_other_events == 0
    assert c.frame["event_type"].unique().sort().to_list() == ["addtocart", "transaction", "view"]


@pytest.mark.parametrize("format", ["session-rec", "auto"])
def test_session_rec_preset(tmp_path, format):
    text = "SessionId\tItemId\tTime\n3\t214716935\t1396437466.94\n3\t214832672\t1396438212.318\n"
    c = read_clicks(write(tmp_path / "train.txt", text), format)
    assert c.format == "session-rec"
    assert rows(c) == [(3, 214716935, 1396437466.94), (3, 214832672, 1396438212.318)]


def test_every_preset_is_documented_with_columns():
    assert set(PRESETS) == {"yoochoose", "diginetica", "retailrocket", "session-rec"}


def test_real_yoochoose_100k_reads_as_session_rec():
    from conftest import shared_dataset

    path = shared_dataset("yoochoose-100k") / "yoochoose-clicks-100k_train_full.txt"
    c = read_clicks(path)
    assert c.format == "session-rec" and c.report.rows_read == 70_278
    assert c.frame["session_id"].n_unique() == 17_794


# -- file kinds -------------------------------------------------------------------------
def expected_frame(tmp_path) -> pl.DataFrame:
    return pl.DataFrame(
        {"session_id": [1, 1, 2], "item_id": [10, 11, 10], "timestamp": [1.0, 2.0, 3.0]}
    )


def test_parquet_ndjson_gzip_give_the_same_clicks(tmp_path):
    df = expected_frame(tmp_path)
    csv = tmp_path / "c.csv"
    df.write_csv(csv)
    df.write_parquet(tmp_path / "c.parquet")
    df.write_ndjson(tmp_path / "c.ndjson")
    (tmp_path / "c.csv.gz").write_bytes(gzip.compress(csv.read_bytes()))
    tsv = df.write_csv(separator="\t")
    (tmp_path / "c.tsv.gz").write_bytes(gzip.compress(tsv.encode()))
    (tmp_path / "misnamed.csv").write_bytes(gzip.compress(csv.read_bytes()))  # magic wins
    (tmp_path / "c.jsonl.gz").write_bytes(gzip.compress((tmp_path / "c.ndjson").read_bytes()))
    want = rows(read_clicks(csv))
    for name, kind, compression in [
        ("c.parquet", "parquet", None),
        ("c.ndjson", "ndjson", None),
        ("c.csv.gz", "csv", "gzip"),
        ("c.tsv.gz", "csv", "gzip"),
        ("misnamed.csv", "csv", "gzip"),
        ("c.jsonl.gz", "ndjson", "gzip"),
    ]:
        c = read_clicks(tmp_path / name)
        assert rows(c) == want, name
        assert (c.report.file_kind, c.report.compression) == (kind, compression), name


def test_polars_frames_are_accepted(tmp_path):
    df = expected_frame(tmp_path)
    assert rows(read_clicks(df)) == rows(read_clicks(df.lazy()))
    assert rows(read_clicks(df)) == [(1, 10, 1.0), (1, 11, 2.0), (2, 10, 3.0)]


def test_datetime_typed_parquet_column(tmp_path):
    from datetime import datetime, timezone

    df = pl.DataFrame(
        {
            "session_id": [1],
            "item_id": [2],
            "timestamp": [datetime(2014, 4, 7, 10, 51, 9, tzinfo=timezone.utc)],
        }
    )
    df.write_parquet(tmp_path / "t.parquet")
    assert read_clicks(tmp_path / "t.parquet").frame["timestamp"][0] == 1396867869.0


# -- duplicates and sessions cut at gaps ------------------------------------------------
def test_exact_duplicates_are_dropped_and_counted(tmp_path):
    f = write(tmp_path / "c.csv", "session_id,item_id,timestamp\n1,2,3\n1,2,3\n1,2,4\n1,2,3\n")
    c = read_clicks(f)
    assert rows(c) == [(1, 2, 3.0), (1, 2, 4.0)] and c.frame["row_nr"].to_list() == [0, 2]
    assert c.report.duplicates_dropped == 2
    kept = read_clicks(f, drop_duplicates=False)
    assert len(kept) == 4 and kept.report.duplicates_kept


def test_drop_exact_duplicates_keeps_the_earliest_row():
    df = pl.DataFrame(
        {"a": [1, 2, 1, 2, 3], "b": ["x", "y", "x", "z", "x"], "row_nr": [4, 3, 2, 1, 0]}
    )
    out = drop_exact_duplicates(df)
    assert out.to_dicts() == [
        {"a": 2, "b": "y", "row_nr": 3},
        {"a": 1, "b": "x", "row_nr": 2},
        {"a": 2, "b": "z", "row_nr": 1},
        {"a": 3, "b": "x", "row_nr": 0},
    ]


def test_cut_sessions_at_gaps():
    df = pl.DataFrame(
        {"session_id": [7, 7, 7, 8], "timestamp": [0.0, 100.0, 400.0, 0.0], "row_nr": [0, 1, 2, 3]}
    )
    cut, added = cut_sessions_at_gaps(df, 200.0)
    assert cut["session_id"].to_list() == [0, 0, 1, 2] and added == 1
    with pytest.raises(ConfigError, match="session_gap_s"):
        cut_sessions_at_gaps(df, 0)


def test_session_gap_on_a_generic_file(tmp_path):
    f = write(tmp_path / "c.csv", "session_id,item_id,timestamp\n1,2,0\n1,3,5000\n")
    c = read_clicks(f, session_gap_s=1800)
    assert c.frame["session_id"].n_unique() == 2 and c.report.sessions_cut_at_gaps == 1


# -- bad input: each case and its error -------------------------------------------------
def test_missing_column_is_named_with_a_suggestion(tmp_path):
    f = write(tmp_path / "clicks.csv", "sesion_id,item_id,timestamp\n1,2,3\n")
    with pytest.raises(
        SchemaError,
        match=r"clicks.csv: no column 'session_id' for the session \(did you mean 'sesion_id'\?\)"
        r".*ColumnMap\.session",
    ) as excinfo:
        read_clicks(f, columns=ColumnMap(session="session_id"))
    assert "ColumnMap.session" in excinfo.value.options
    with pytest.raises(
        SchemaError,
        match=r"no session id column found \(did you mean 'sesion_id'\?\).*ColumnMap\.session",
    ) as excinfo:
        read_clicks(f)
    assert "ColumnMap.session" in excinfo.value.options


def test_every_missing_column_is_listed_at_once_with_close_names(tmp_path):
    """Detection and explicit names report all their gaps in one error; each gap offers
    the file's columns that look like it (not those already mapped to another role)."""
    f = write(tmp_path / "clicks.csv", "sess,product,tstamp,kategory\n1,2,3,4\n")
    with pytest.raises(SchemaError) as excinfo:
        read_clicks(f, columns=ColumnMap(category="category"))
    msg = str(excinfo.value)
    assert "3 columns are missing" in msg
    assert "no session id column found (did you mean 'sess'?)" in msg
    assert "no timestamp column found (did you mean 'tstamp'?)" in msg
    assert "no column 'category' for the category (did you mean 'kategory'?)" in msg
    # 'product' is the item (a guessed name): found, and offered for nothing else
    assert "'product'?" not in msg
    assert excinfo.value.options == (
        "ColumnMap.session",
        "ColumnMap.time",
        "ColumnMap.time_unit",
        "ColumnMap.date",
        "ColumnMap.offset",
        "ColumnMap.category",
        "read_clicks.format",
    )
    g = write(tmp_path / "other.csv", "a,b,c\n1,2,3\n")
    with pytest.raises(SchemaError, match="3 columns are missing") as excinfo:
        read_clicks(g)
    assert "did you mean" not in str(excinfo.value)


def test_preset_on_a_file_of_another_format(tmp_path):
    f = write(tmp_path / "events.csv", RETAILROCKET)
    with pytest.raises(
        SchemaError, match=r"(?s)events.csv: .*no column 'session_id' for the session"
    ):
        read_clicks(f, "diginetica")


def test_no_timestamp_column(tmp_path):
    f = write(tmp_path / "c.csv", "session_id,item_id,foo\n1,2,3\n")
    with pytest.raises(SchemaError, match=r"no timestamp column.*ColumnMap\.time") as excinfo:
        read_clicks(f)
    assert "ColumnMap.time" in excinfo.value.options


def test_unparsable_timestamp_names_row_column_and_value(tmp_path):
    f = write(tmp_path / "c.csv", "session_id,item_id,timestamp\n1,2,3\n1,2,yesterday\n")
    with pytest.raises(
        BadRowsError,
        match=r"unparsable timestamp: 1 row\(s\), first at data row 2 \(line 3\), column 'timestamp' = 'yesterday'.*on_bad_rows='skip'",
    ) as excinfo:
        read_clicks(f)
    assert "read_clicks.on_bad_rows" in excinfo.value.options


def test_out_of_range_timestamps(tmp_path):
    f = write(
        tmp_path / "c.csv", "session_id,item_id,timestamp\n1,2,-5\n1,2,1e12\n1,2,inf\n1,3,4\n"
    )
    with pytest.raises(BadRowsError, match="timestamp out of range"):
        read_clicks(f, columns=ColumnMap(time_unit="s"))
    c = read_clicks(f, columns=ColumnMap(time_unit="s"), on_bad_rows="skip")
    assert c.report.bad_rows == {
        "missing or unparsable timestamp": 1,
        "timestamp out of range [0, 1e11) s (1e14 ms, 1e17 us, 1e20 ns)": 2,
    }
    assert rows(c) == [(1, 3, 4.0)]


def test_empty_file_and_header_only(tmp_path):
    with pytest.raises(EmptyDataError, match=r"empty.csv: the clickstream dump is empty"):
        read_clicks(write(tmp_path / "empty.csv", ""))
    with pytest.raises(EmptyDataError, match="no data rows"):
        read_clicks(write(tmp_path / "header.csv", "session_id,item_id,timestamp\n"))
    with pytest.raises(EmptyDataError, match="no data"):
        read_clicks(write(tmp_path / "blank.csv", "\n\n"))
    with pytest.raises(EmptyDataError, match="no data"):
        read_clicks(write(tmp_path / "e.csv.gz", gzip.compress(b"")))


def test_non_utf8_bytes_name_the_row(tmp_path):
    f = write(tmp_path / "c.csv", b"session_id,item_id,timestamp\n1,ok,3\n1,caf\xe9,4\n")
    with pytest.raises(BadRowsError, match=r"invalid UTF-8 bytes: 1 row\(s\), first at data row 2"):
        read_clicks(f)
    c = read_clicks(f, on_bad_rows="skip")
    assert c.report.rows_skipped == 1 and rows(c) == [(1, "ok", 3.0)]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("-3", "negative item id"),
        ("99999999999999999999", "item id above 2**63-1"),
        ("", "null or empty item id"),
        ("12abc", "non-integer item id"),
    ],
)
def test_bad_item_ids(tmp_path, value, reason):
    f = write(tmp_path / "c.csv", f"session_id,item_id,timestamp\n1,5,3\n1,{value},4\n")
    with pytest.raises(BadRowsError, match=reason.replace("*", r"\*")):
        read_clicks(f, columns=ColumnMap(id_type="int"))
    c = read_clicks(f, columns=ColumnMap(id_type="int"), on_bad_rows="skip")
    assert c.report.bad_rows == {reason: 1} and c.report.rows_skipped == 1 and len(c) == 1


def test_null_and_negative_session_ids(tmp_path):
    f = write(tmp_path / "c.csv", "session_id,item_id,timestamp\n,5,3\n-1,5,3\n2,5,3\n")
    with pytest.raises(BadRowsError, match=r"null or empty session id.*negative session id"):
        read_clicks(f)


def test_a_late_non_integer_in_an_integer_column_is_a_bad_row(tmp_path):
    # auto id type is decided on the first 1,000 values, so a stray value cannot
    # silently turn every id into a string
    lines = "".join(f"1,{i},{i}\n" for i in range(1500)) + "1,oops,9\n"
    f = write(tmp_path / "c.csv", "session_id,item_id,timestamp\n" + lines)
    with pytest.raises(
        BadRowsError, match=r"non-integer item id.*data row 1501.*'oops'.*ColumnMap\.id_type='str'"
    ) as excinfo:
        read_clicks(f)
    assert "ColumnMap.id_type" in excinfo.value.options
    assert read_clicks(f, columns=ColumnMap(id_type="str")).report.item_id_kind == "str"


def test_all_rows_bad_with_skip_is_empty(tmp_path):
    f = write(tmp_path / "c.csv", "session_id,item_id,timestamp\n1,2,x\n1,3,y\n")
    with pytest.raises(EmptyDataError, match="no rows left after dropping 2 bad rows"):
        read_clicks(f, on_bad_rows="skip")


def test_ragged_lines(tmp_path):
    f = write(tmp_path / "c.csv", "session_id,item_id,timestamp\n1,2,3,extra\n1,2\n")
    c = read_clicks(f, on_bad_rows="skip")
    assert rows(c) == [(1, 2, 3.0)] and c.report.bad_rows == {"missing or unparsable timestamp": 1}


def test_float_id_column_in_parquet_is_refused(tmp_path):
    pl.DataFrame({"session_id": [1.5], "item_id": [2], "timestamp": [3.0]}).write_parquet(
        tmp_path / "f.parquet"
    )
    with pytest.raises(
        SchemaError, match=r"column 'session_id' has dtype Float64; ids must be integers or strings"
    ):
        read_clicks(tmp_path / "f.parquet")


def test_unreadable_files(tmp_path):
    with pytest.raises(SchemaError, match="not a readable gzip file"):
        read_clicks(write(tmp_path / "c.csv.gz", b"\x1f\x8b\x08\x00garbage"))
    with pytest.raises(SchemaError, match=r"bad.parquet: cannot be read as Parquet"):
        read_clicks(write(tmp_path / "bad.parquet", b"PAR1 not really parquet"))
    with pytest.raises(ConfigError, match="no such file") as missing:
        read_clicks(tmp_path / "missing.csv")
    assert missing.value.options == ("read_clicks.source",)
    with pytest.raises(ConfigError, match="is a directory; pass the path of the clickstream"):
        read_clicks(tmp_path)  # a folder of dumps is not a dump


def test_bad_options():
    with pytest.raises(ConfigError, match="unknown format 'csv2'"):
        read_clicks("x.csv", "csv2")
    with pytest.raises(ConfigError, match="on_bad_rows"):
        read_clicks("x.csv", on_bad_rows="ignore")  # type: ignore[arg-type]


def test_every_bad_row_reason_has_a_distinct_text():
    assert len(set(BAD_ROW_REASONS.values())) == len(BAD_ROW_REASONS)


# -- properties -------------------------------------------------------------------------
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_clean(c) -> None:
    """What every successful read guarantees."""
    f = c.frame
    assert f.height > 0 and f["session_id"].null_count() == 0 and f["item_id"].null_count() == 0
    ts = f["timestamp"].to_list()
    assert all(math.isfinite(t) and 0 <= t < MAX_TIMESTAMP_S for t in ts)
    if f.schema["item_id"] == pl.Int64:
        assert f["item_id"].min() >= 0


@SETTINGS
@given(
    st.binary(max_size=300),
    st.sampled_from(["c.csv", "c.tsv", "c.parquet", "c.ndjson", "c.csv.gz", "c.dat"]),
)
def test_random_bytes_give_a_result_or_a_sessionrec_error(data, name):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        for on_bad in ("error", "skip"):
            try:
                check_clean(read_clicks(path, on_bad_rows=on_bad))
            except SessionrecError:
                pass


cell = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.text(max_size=6),
    st.just(""),
    st.sampled_from(["2014-04-07T10:51:09.277Z", "NA", "null", "0", "1.5e3", "é", "\u00a0"]),
)


@SETTINGS
@given(
    st.lists(st.tuples(cell, cell, cell), min_size=0, max_size=8),
    st.sampled_from([",", ";", "\t"]),
    st.sampled_from(["auto", "session-rec", "yoochoose"]),
)
def test_random_rows_give_a_result_or_a_sessionrec_error(table, sep, format):
    header = (
        sep.join(["SessionId", "ItemId", "Time"])
        if format == "session-rec"
        else sep.join(["session_id", "item_id", "timestamp"])
    )
    text = header + "\n" + "".join(sep.join(r) + "\n" for r in table)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.csv"
        path.write_text(text, encoding="utf-8")
        for on_bad in ("error", "skip"):
            try:
                check_clean(read_clicks(path, format, on_bad_rows=on_bad))
            except SessionrecError:
                pass


@SETTINGS
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=-5, max_value=2**64),
            st.one_of(st.integers(min_value=-5, max_value=2**64), st.text(max_size=4)),
            st.floats(allow_nan=True, allow_infinity=True),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_typed_frames_with_wrong_values_give_a_result_or_a_sessionrec_error(table):
    sessions, items, times = zip(*table, strict=True)
    try:
        df = pl.DataFrame(
            {
                "session_id": list(sessions),
                "item_id": [str(i) for i in items],
                "timestamp": list(times),
            },
            strict=False,
        )
    except (OverflowError, pl.exceptions.PolarsError):
        return  # not a frame polars can build
    try:
        c = read_clicks(df, columns=ColumnMap(time_unit="s"), on_bad_rows="skip")
    except SessionrecError:
        return
    check_clean(c)
    # good rows survive exactly
    good = [
        (s, str(i), t)
        for s, i, t in table
        if 0 <= s < 2**63 and str(i).strip() and math.isfinite(t) and 0 <= t < MAX_TIMESTAMP_S
    ]
    assert len(c) <= len(good)


def test_iso_shapes_come_from_the_first_values(tmp_path):
    # the shapes seen in the first 1,000 values are used for the whole file
    lines = "".join(f"1,{i},2014-04-07T10:51:{i % 60:02d}.5Z\n" for i in range(1200))
    f = write(
        tmp_path / "c.csv", "session_id,item_id,timestamp\n" + lines + "1,5,2014-04-07 10:51:09\n"
    )
    with pytest.raises(
        BadRowsError, match=r"unparsable timestamp.*data row 1201.*'2014-04-07 10:51:09'"
    ):
        read_clicks(f)
    c = read_clicks(f, on_bad_rows="skip")
    assert c.report.time_formats == ["%Y-%m-%dT%H:%M:%S%.fZ"] and len(c) == 1200
