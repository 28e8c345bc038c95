"""Time units: Unix epochs in s, ms, us and ns, decided by magnitude under ``auto``.

Hand-computed cases first (the same instant in every unit, the unit each way is decided
by, precision: clicks 1 us apart keep their order), then errors, then the properties:
random epochs of 1990 .. 2100 written as integers in any unit are detected as that unit
and read back to the same seconds within one Float64 step.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import polars as pl
import pytest
from conftest import shared_dataset
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionrec.cli import main
from sessionrec.data.ingest import read_clicks
from sessionrec.data.parsing import (
    BAD_ROW_REASONS,
    EPOCH_UNITS,
    MAGNITUDE_BOUNDS,
    resolve_time_unit,
)
from sessionrec.data.presets import ColumnMap
from sessionrec.errors import BadRowsError, ConfigError, SchemaError

HEADER = "session_id,item_id,timestamp\n"
T_1990, T_2100 = 631_152_000, 4_102_444_800  # 1990-01-01 and 2100-01-01, Unix seconds


def csv(tmp_path: Path, lines: list[str], name: str = "c.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "".join(f"{line}\n" for line in lines))
    return path


def seconds(c) -> list[float]:
    return c.frame["timestamp"].to_list()


# -- the example of the issue -----------------------------------------------------------
def test_microsecond_epochs_are_read_as_microseconds(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text(
        "session_id,item_id,event_timestamp\n1,10,1700000000000123\n1,20,1700000060000123\n"
    )
    c = read_clicks(path)  # event_timestamp is recognised as the time column
    assert c.report.columns["time"] == "event_timestamp"
    assert (c.report.time_unit, c.report.time_unit_decided_by) == ("us", "magnitude")
    # 1700000000.000123 is the Float64 nearest to 1700000000000123 / 10**6
    assert seconds(c) == [1700000000000123 / 10**6, 1700000060000123 / 10**6]
    assert seconds(c) == [1700000000.000123, 1700000060.000123]


# -- the same instant in every unit -----------------------------------------------------
@pytest.mark.parametrize(
    ("text", "unit"),
    [
        ("1396867869.5", "s"),
        ("1396867869500", "ms"),
        ("1396867869500000", "us"),
        ("1396867869500000000", "ns"),
        ("2014-04-07T10:51:09.5Z", "iso"),
    ],
)
def test_auto_decides_every_unit(tmp_path, text, unit):
    c = read_clicks(csv(tmp_path, [f"1,2,{text}", f"1,3,{text}"]))
    assert c.report.time_unit == unit
    assert c.report.time_unit_decided_by == ("text" if unit == "iso" else "magnitude")
    assert seconds(c) == [1396867869.5, 1396867869.5]  # exact: 0.5 is a Float64


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_given_units_and_integer_columns(tmp_path, unit):
    value = 1396867869 * EPOCH_UNITS[unit] + EPOCH_UNITS[unit] // 2
    frame = pl.DataFrame({"session_id": [1], "item_id": [2], "timestamp": [value]})
    for source in (frame, csv(tmp_path, [f"1,2,{value}"])):  # Int64 column, then text
        c = read_clicks(source, columns=ColumnMap(time_unit=unit))
        assert (c.report.time_unit, c.report.time_unit_decided_by) == (unit, "given")
        assert seconds(c) == [1396867869.0 if unit == "s" else 1396867869.5]


def test_magnitude_bounds_are_documented_ones():
    assert MAGNITUDE_BOUNDS == ((1e11, "s"), (1e14, "ms"), (1e17, "us"))
    # each bound is 1e8 s (1973-03-03) in the next unit: real times are unambiguous
    assert [b / EPOCH_UNITS[u] for (b, _), u in zip(MAGNITUDE_BOUNDS, ("ms", "us", "ns"))] == [
        1e8,
        1e8,
        1e8,
    ]


@pytest.mark.parametrize(
    ("median", "unit"),
    [(99_999_999_999, "s"), (100_000_000_000, "ms"), (99_999_999_999_999, "ms"),
     (100_000_000_000_000, "us"), (99_999_999_999_999_000, "us"),
     (100_000_000_000_000_000, "ns")],
)  # fmt: skip
def test_magnitude_bounds_on_either_side(tmp_path, median, unit):
    c = read_clicks(csv(tmp_path, [f"1,2,{median}"]), on_bad_rows="skip")
    assert c.report.time_unit == unit


def test_integers_next_to_a_bound_are_compared_exactly():
    # 1e17 - 1 is not a Float64 (it rounds to 1e17): as a float it would read as ns
    frame = pl.LazyFrame({"t": ["99999999999999999", "99999999999999999"]})
    assert resolve_time_unit(frame, "t", pl.String, "auto", "x") == ("us", "magnitude")
    frame = pl.LazyFrame({"t": [99_999_999_999_999_999, 99_999_999_999_999_999]})
    assert resolve_time_unit(frame, "t", pl.Int64, "auto", "x") == ("us", "magnitude")


def test_the_median_decides_a_mixed_sample(tmp_path):
    # two ms values and one s value: the median is ms, so the s value is read as ms
    # (1970-01-17: in range, not a bad row; one unit per column)
    c = read_clicks(csv(tmp_path, ["1,2,1396867869000", "1,3,1396867870000", "1,4,1396867869"]))
    assert c.report.time_unit == "ms"
    assert seconds(c) == [1396867869.0, 1396867870.0, 1396867.869]


def test_who_decided_the_unit(tmp_path):
    retail = tmp_path / "events.csv"
    retail.write_text("timestamp,visitorid,event,itemid,transactionid\n1433221332117,1,view,5,\n")
    r = read_clicks(retail).report
    assert (r.format, r.time_unit, r.time_unit_decided_by) == ("retailrocket", "ms", "preset")
    digi = tmp_path / "train-item-views.csv"
    digi.write_text(
        "session_id;user_id;item_id;timeframe;eventdate\n1;NA;81766;526309;2016-05-09\n"
    )
    r = read_clicks(digi).report
    assert (r.time_unit, r.time_unit_decided_by) == ("date + offset (ms)", "preset")
    r = read_clicks(digi, columns=ColumnMap(offset_unit="s"), on_bad_rows="skip").report
    assert (r.time_unit, r.time_unit_decided_by) == ("date + offset (s)", "given")
    typed = pl.DataFrame({"session_id": [1], "item_id": [2], "timestamp": [0]})
    typed = typed.with_columns(pl.col("timestamp").cast(pl.Datetime("ms")))
    r = read_clicks(typed).report
    assert (r.time_unit, r.time_unit_decided_by) == ("datetime", "dtype")


# -- precision --------------------------------------------------------------------------
def test_clicks_one_microsecond_apart_keep_their_order(tmp_path):
    base = 1_700_000_000_000_000
    # written newest first, so file order cannot hide a swap
    lines = [f"1,{i},{base + 3 - i}" for i in range(4)]
    ts = seconds(read_clicks(csv(tmp_path, lines)))
    assert ts[0] > ts[1] > ts[2] > ts[3]
    assert [round((t - 1_700_000_000) * 1e6) for t in ts] == [3, 2, 1, 0]


def test_nanoseconds_are_split_exactly_before_the_float_sum(tmp_path):
    # 1700000000123456789 ns is not a Float64; read as Float64 first it would be
    # 1700000000123456768 (21 ns off) before the division
    value = 1_700_000_000_123_456_789
    ts = seconds(read_clicks(csv(tmp_path, [f"1,2,{value}", f"1,3,{value + 1000}"])))
    exact = Fraction(value, 10**9)
    assert abs(Fraction(ts[0]) - exact) <= Fraction(math.ulp(ts[0])) / 2  # nearest Float64
    assert ts[1] > ts[0]  # 1 us apart: distinct and in order


# -- errors -----------------------------------------------------------------------------
def test_out_of_range_names_every_unit(tmp_path):
    path = csv(tmp_path, ["1,2,1700000000000123"])
    with pytest.raises(BadRowsError) as excinfo:
        read_clicks(path, columns=ColumnMap(time_unit="s"))
    text = str(excinfo.value)
    assert "timestamp out of range [0, 1e11) s (1e14 ms, 1e17 us, 1e20 ns)" in text
    assert "Times were read as Unix seconds" in text
    assert "ColumnMap.time_unit 's', 'ms', 'us' or 'ns'" in text
    assert "ColumnMap.time_unit" in excinfo.value.options
    assert BAD_ROW_REASONS[11] == "timestamp out of range [0, 1e11) s (1e14 ms, 1e17 us, 1e20 ns)"


def test_unknown_time_unit_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown time unit 'minutes'") as excinfo:
        read_clicks(csv(tmp_path, ["1,2,3"]), columns=ColumnMap(time_unit="minutes"))  # type: ignore[arg-type]
    assert excinfo.value.options == ("ColumnMap.time_unit",)


def test_numbers_given_as_iso_name_the_epoch_units(tmp_path):
    frame = pl.DataFrame({"session_id": [1], "item_id": [2], "timestamp": [1.5]})
    with pytest.raises(SchemaError, match=r"holds numbers, not ISO-8601.*'s', 'ms', 'us' or 'ns'"):
        read_clicks(frame, columns=ColumnMap(time_unit="iso"))


# -- the command line and the real datasets ----------------------------------------------
def test_prepare_reads_microseconds_and_records_the_decision(tmp_path, capsys):
    lines = ["session_id,item_id,event_timestamp"]
    for s in range(1, 41):  # 40 sessions over 5 days, 3 clicks each, 1 minute apart
        start = 1_700_000_000_000_123 + s * 3 * 3600 * 10**6
        lines += [f"{s},{10 + (s + k) % 7},{start + k * 60 * 10**6}" for k in range(3)]
    path = tmp_path / "us.csv"
    path.write_text("\n".join(lines) + "\n")
    argv = ["prepare", "--clicks", str(path), "--out", str(tmp_path / "out"), "--test-days", "1",
            "--min-item-support", "1", "--json"]  # fmt: skip
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    ingest = result["report"]["ingest"]
    assert (ingest["time_unit"], ingest["time_unit_decided_by"]) == ("us", "magnitude")
    assert ingest["rows_read"] == 120 and ingest["bad_rows"] == {}
    # a session's time is its last click; session 32's is exactly 1 day before session
    # 40's, so sessions 32 .. 40 test (Float64 seconds keep the .000123 of both equal)
    assert (result["train_sessions"], result["test_sessions"]) == (31, 9)


@pytest.mark.parametrize(
    ("name", "path", "format", "unit", "decided_by"),
    [
        (
            "diginetica-sample",
            "sample_train-item-views.csv",
            "auto",
            "date + offset (ms)",
            "preset",
        ),
        ("yoochoose-100k", "yoochoose-clicks-100k_train_full.txt", "session-rec", "s", "preset"),
    ],
)
def test_real_datasets_read_as_before(name, path, format, unit, decided_by):
    r = read_clicks(shared_dataset(name) / path, format=format).report
    assert (r.time_unit, r.time_unit_decided_by) == (unit, decided_by)
    assert (r.session_id_kind, r.item_id_kind) == ("int", "int")
    assert r.warnings == [] and r.item_ids_changed_as_int == 0


def test_the_synthetic_clicks_read_as_seconds():
    root = Path(__file__).resolve().parents[1]
    r = read_clicks(root / "data" / "synthetic" / "clicks.csv").report
    assert (r.time_unit, r.time_unit_decided_by) == ("s", "magnitude")
    assert (r.session_id_kind, r.item_id_kind) == ("int", "int")


# -- properties -------------------------------------------------------------------------
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def epochs(draw) -> tuple[str, list[int]]:
    unit = draw(st.sampled_from(list(EPOCH_UNITS)))
    per = EPOCH_UNITS[unit]
    values = st.integers(T_1990 * per, T_2100 * per - 1)
    return unit, draw(st.lists(values, min_size=1, max_size=6))


@SETTINGS
@given(epochs())
def test_random_epochs_are_detected_and_read_back(case):
    unit, values = case
    per = EPOCH_UNITS[unit]
    frame = pl.DataFrame(
        {"session_id": [1] * len(values), "item_id": list(range(len(values))),
         "timestamp": [str(v) for v in values]}
    )  # fmt: skip
    c = read_clicks(frame, drop_duplicates=False)
    assert (c.report.time_unit, c.report.time_unit_decided_by) == (unit, "magnitude")
    ts = seconds(c)
    for t, v in zip(ts, values):
        # within one Float64 step of the exact value (resolution 1 unit or finer)
        assert abs(Fraction(t) - Fraction(v, per)) <= Fraction(math.ulp(t))
    for (t1, v1), (t2, v2) in zip(zip(ts, values), zip(ts[1:], values[1:])):
        if v1 < v2:
            # s to us: distinct values stay distinct; ns: never swapped (may tie)
            assert t1 < t2 if unit != "ns" else t1 <= t2


@SETTINGS
@given(st.sampled_from(list(EPOCH_UNITS)), st.integers(T_1990, T_2100 - 1))
def test_integer_columns_read_like_text(unit, second):
    value = second * EPOCH_UNITS[unit] + EPOCH_UNITS[unit] - 1
    as_int = pl.DataFrame({"session_id": [1], "item_id": [2], "timestamp": [value]})
    as_text = as_int.with_columns(pl.col("timestamp").cast(pl.String))
    assert seconds(read_clicks(as_int)) == seconds(read_clicks(as_text))
