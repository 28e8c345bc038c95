"""Id kinds: ids whose text an integer would not keep stay strings under ``auto``.

``"00123"`` read as an integer is 123, the same item as ``"123"``, and a service that
later sends ``"00123"`` gets a type error. With ``id_type="auto"`` such a column is read
as strings and the report says why; with ``id_type="int"`` (given, or a preset's) the
ids are read as integers as before, counted and warned about. Hand-made cases first,
then the command line, then properties over random id texts.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionrec.cli import main
from sessionrec.data.ingest import read_clicks
from sessionrec.data.parsing import changes_as_int, looks_like_int
from sessionrec.data.presets import ColumnMap
from sessionrec.data.protocol import ProtocolConfig, prepare
from sessionrec.errors import ConfigError

LEADING_ZEROS = "leading zeros ('00123') would be lost as integers"


def csv(tmp_path: Path, lines: list[str], header: str = "session_id,item_id,timestamp") -> Path:
    path = tmp_path / "c.csv"
    path.write_text(header + "\n" + "".join(f"{line}\n" for line in lines))
    return path


def items(c) -> list:
    return c.frame["item_id"].to_list()


# -- auto -------------------------------------------------------------------------------
def test_zero_padded_item_ids_stay_strings_and_the_reason_is_reported(tmp_path):
    c = read_clicks(csv(tmp_path, ["1,00123,100", "1,123,160", "2,00456,200"]))
    assert c.frame.schema["item_id"] == pl.String
    assert items(c) == ["00123", "123", "00456"]  # two items, not one
    assert (c.report.item_id_kind, c.report.item_id_kind_reason) == ("str", LEADING_ZEROS)
    assert c.report.session_id_kind == "int"
    assert c.report.item_ids_changed_as_int == 0 and c.report.warnings == []


def test_integers_that_keep_their_text_stay_integers(tmp_path):
    c = read_clicks(csv(tmp_path, ["1,123,100", "1,0,160", "10,7,200"]))  # plain 0 is fine
    assert items(c) == [123, 0, 7] and c.frame.schema["item_id"] == pl.Int64
    assert c.report.item_id_kind == "int"
    assert c.report.item_id_kind_reason == "the first 1,000 ids are integers that keep their text"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("0123", "leading zeros ('0123') would be lost as integers"),
        ("00", "leading zeros ('00') would be lost as integers"),
        ("-05", "leading zeros ('-05') would be lost as integers"),
        ("+5", "a plus sign ('+5') would be lost as integers"),
        ("-0", "the sign of '-0' would be lost as integers"),
        ("A-1", "non-integer ids ('A-1')"),
        ("\u0661\u0662", "non-integer ids ('\u0661\u0662')"),  # Arabic-Indic digits
    ],
)
def test_every_kind_of_lossy_text_is_a_reason_for_strings(tmp_path, text, reason):
    c = read_clicks(csv(tmp_path, ["1,5,100", f"1,{text},160"]))
    assert (c.report.item_id_kind, c.report.item_id_kind_reason) == ("str", reason)
    assert items(c) == ["5", text]


def test_session_ids_follow_the_same_rule(tmp_path):
    c = read_clicks(csv(tmp_path, ["007,1,100", "7,1,160", "007,2,200"]))
    assert c.report.session_id_kind == "str"
    assert c.report.session_id_kind_reason == "leading zeros ('007') would be lost as integers"
    assert c.frame["session_id"].to_list() == ["007", "7", "007"]  # two sessions


def test_integer_columns_are_integers(tmp_path):
    frame = pl.DataFrame({"session_id": [1], "item_id": [123], "timestamp": [100]})
    r = read_clicks(frame).report
    assert (r.item_id_kind, r.item_id_kind_reason) == ("int", "the column holds integers (Int64)")


def test_a_lossy_id_after_the_first_1000_rows_is_counted(tmp_path):
    # auto decides on the first 1,000 values: integers; the later "0042" is read as 42,
    # counted and warned about rather than silently merged
    lines = [f"1,{i},{i}" for i in range(1, 1501)] + ["1,0042,9"]
    with pytest.warns(UserWarning, match=r"1 row\(s\) of the item id column 'item_id'"):
        c = read_clicks(csv(tmp_path, lines))
    assert c.report.item_id_kind == "int" and c.report.item_ids_changed_as_int == 1
    assert "first: '0042' at data row 1501, read as 42" in c.report.warnings[0]
    assert items(c)[-1] == 42


# -- int, given or by a preset ----------------------------------------------------------
def test_explicit_int_reads_00123_as_123_and_counts_it(tmp_path):
    path = csv(tmp_path, ["1,00123,100", "1,123,160", "2,00456,200", "2,+7,300"])
    with pytest.warns(UserWarning) as caught:
        c = read_clicks(path, columns=ColumnMap(id_type="int"))
    assert items(c) == [123, 123, 456, 7]
    assert (c.report.item_id_kind, c.report.item_id_kind_reason) == ("int", "given: int")
    assert c.report.item_ids_changed_as_int == 3 and c.report.session_ids_changed_as_int == 0
    assert c.report.warnings == [
        f"{path}: 3 row(s) of the item id column 'item_id' hold ids read as integers that do "
        "not keep their text (first: '00123' at data row 1, read as 123); ids such as '0123' "
        "and '123' become one. Read the ids as strings to keep them as given "
        "(ColumnMap.id_type='str')."
    ]
    assert [str(w.message) for w in caught] == c.report.warnings


def test_explicit_str_keeps_every_text(tmp_path):
    c = read_clicks(csv(tmp_path, ["1,00123,100", "1,123,160"]), columns=ColumnMap(id_type="str"))
    assert items(c) == ["00123", "123"] and c.report.item_id_kind_reason == "given: str"
    assert c.frame["session_id"].to_list() == ["1", "1"]


def test_a_preset_int_column_is_counted_too(tmp_path):
    path = tmp_path / "train-item-views.csv"
    path.write_text(
        "session_id;user_id;item_id;timeframe;eventdate\n"
        "1;NA;0815;0;2016-05-09\n1;NA;815;1000;2016-05-09\n"
    )
    with pytest.warns(UserWarning, match="item id column 'item_id'"):
        r = read_clicks(path).report
    assert (r.format, r.item_id_kind) == ("diginetica", "int")
    assert r.item_id_kind_reason == "set by the format preset: int"
    assert r.item_ids_changed_as_int == 1


def test_bad_rows_are_not_counted_as_changed(tmp_path):
    path = csv(tmp_path, ["1,007,100", "1,008,nan", "1,9,160"])
    with pytest.warns(UserWarning):
        c = read_clicks(path, columns=ColumnMap(id_type="int"), on_bad_rows="skip")
    assert c.report.item_ids_changed_as_int == 1 and items(c) == [7, 9]


def test_unknown_id_type_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="unknown id type 'float'") as excinfo:
        read_clicks(csv(tmp_path, ["1,2,3"]), columns=ColumnMap(id_type="float"))  # type: ignore[arg-type]
    assert excinfo.value.options == ("ColumnMap.id_type",)


# -- prepare and the command line -------------------------------------------------------
def padded_clicks(tmp_path: Path) -> Path:
    """Sessions 1..4 (days 1-4) train, session 9 (day 9) tests; items '00010' .. '00012'."""
    day = 86_400
    lines = []
    for s in range(1, 5):
        lines += [f"{s},00010,{s * day}", f"{s},00011,{s * day + 1}", f"{s},00012,{s * day + 2}"]
    lines += [f"9,00010,{9 * day}", f"9,00012,{9 * day + 5}"]
    return csv(tmp_path, lines)


def test_prepare_records_the_decision_in_dataset_json(tmp_path):
    dataset = prepare(padded_clicks(tmp_path), ProtocolConfig(test_days=1, min_item_support=1))
    assert dataset.vocab.kind == "str"
    assert sorted(dataset.vocab.ids.tolist()) == ["00010", "00011", "00012"]
    dataset.save(tmp_path / "out")
    ingest = json.loads((tmp_path / "out" / "dataset.json").read_text())["report"]["ingest"]
    assert ingest["item_id_kind"] == "str"
    assert ingest["item_id_kind_reason"] == "leading zeros ('00010') would be lost as integers"


def test_sessionrec_prepare_prints_the_ids_kept_as_strings(tmp_path, capsys):
    argv = ["prepare", "--clicks", str(padded_clicks(tmp_path)), "--test-days", "1",
            "--min-item-support", "1"]  # fmt: skip
    assert main([*argv, "--out", str(tmp_path / "auto")]) == 0
    out = capsys.readouterr().out
    expected = "item ids kept as strings: leading zeros ('00010') would be lost as integers"
    assert expected in out.splitlines()
    assert "session ids kept as strings" not in out
    assert main([*argv, "--out", str(tmp_path / "given"), "--id-type", "str"]) == 0
    assert "kept as strings" not in capsys.readouterr().out  # given, not decided


# -- properties -------------------------------------------------------------------------
SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
id_texts = st.lists(
    st.one_of(
        st.text(alphabet="0123456789", min_size=1, max_size=4),
        st.text(alphabet="0123456789+- x", min_size=1, max_size=4),
    ),
    min_size=1,
    max_size=12,
)


def lossy(text: str) -> bool:
    """The oracle: integer text that ``str(int(...))`` does not give back."""
    t = text.strip()
    return re.fullmatch(r"[+-]?[0-9]+", t) is not None and str(int(t)) != t


@SETTINGS
@given(id_texts)
def test_auto_never_loses_an_id_text(texts):
    frame = pl.DataFrame(
        {"session_id": ["1"] * len(texts), "item_id": texts, "timestamp": list(range(len(texts)))}
    )
    present = [t.strip() for t in texts if t.strip()]
    try:
        c = read_clicks(frame, on_bad_rows="skip", drop_duplicates=False)
    except Exception as error:  # every row bad (e.g. all negative ints): an empty result
        assert type(error).__name__ == "EmptyDataError"
        return
    integers = all(looks_like_int(t) for t in present) and not any(lossy(t) for t in present)
    assert c.report.item_id_kind == ("int" if integers else "str")
    assert c.report.item_ids_changed_as_int == 0
    kept = items(c)
    if integers:
        good = [t for t in present if 0 <= int(t) < 2**63]
        assert [str(v) for v in kept] == good  # each integer writes back its own text
    else:
        assert kept == present  # strings exactly as given, spaces around them aside


@SETTINGS
@given(id_texts)
def test_explicit_int_counts_every_changed_text(texts):
    frame = pl.DataFrame(
        {"session_id": ["1"] * len(texts), "item_id": texts, "timestamp": list(range(len(texts)))}
    )
    good = [t.strip() for t in texts if looks_like_int(t) and 0 <= int(t) < 2**63]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            c = read_clicks(frame, columns=ColumnMap(id_type="int"), on_bad_rows="skip",
                            drop_duplicates=False)  # fmt: skip
        except Exception as error:
            assert type(error).__name__ == "EmptyDataError" and not good
            return
    assert items(c) == [int(t) for t in good]
    assert c.report.item_ids_changed_as_int == sum(lossy(t) for t in good)
    assert len(c.report.warnings) == (1 if any(lossy(t) for t in good) else 0)
    assert all(changes_as_int(t) == lossy(t) for t in texts)


def test_a_model_evaluated_on_data_of_the_other_id_kind_is_told_so(tmp_path, capsys):
    """A string-id model and the same items read as integers: the error says the kinds
    differ (not that the vocabularies of equal sizes differ) and how to fix it."""
    import numpy as np

    from sessionrec.data.vocab import ItemVocab
    from sessionrec.train import check_data_items
    from tests._onnx_helpers import random_model, tiny_dataset

    as_text, as_int = ItemVocab(["10", "11", "12"]), ItemVocab(np.array([10, 11, 12]))
    with pytest.raises(ConfigError) as excinfo:
        check_data_items(as_text, as_int)
    assert str(excinfo.value) == (
        "the model's item ids are strings (e.g. '10', '11', '12') and the data's are "
        "integers (e.g. 10, 11, 12): the id kinds differ, so no item matches. Prepare the "
        "data with the model's id kind (ColumnMap.id_type='str'; the model's "
        "DataContract.id_kind is 'str')"
    )
    assert excinfo.value.options == ("ColumnMap.id_type",)
    with pytest.raises(ConfigError, match=r"holds other items than the model's \(3, e.g."):
        check_data_items(as_int, ItemVocab(np.array([10, 12, 11])))
    check_data_items(ItemVocab(np.array([10, 11, 12, 13])), as_int)  # a content model's

    # the command line: the same message, and the flag
    ints = tiny_dataset("int")
    model = random_model("str", n_items=len(ints.vocab))
    model.save(tmp_path / "model")
    ints.save(tmp_path / "data")
    assert main(["evaluate", "--model", str(tmp_path / "model"), str(tmp_path / "data")]) == 1
    err = capsys.readouterr().err
    assert "the id kinds differ" in err and "(on the command line: --id-type str|int)" in err
