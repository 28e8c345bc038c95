"""Item catalog ingestion: hand-computed encodings, alignment, errors, real data."""

from __future__ import annotations

import gzip
import json

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionrec.data.catalog import (
    ItemCatalog,
    fnv1a_64,
    read_catalog,
    text_tokens,
)
from sessionrec.data.vocab import ItemVocab
from sessionrec.errors import (
    ArtifactError,
    BadRowsError,
    ConfigError,
    EmptyDataError,
    SchemaError,
)
from tests.conftest import shared_dataset


def reference_fnv1a_64(text: str) -> int:
    """FNV-1a 64 written out from its definition (the spec of ``fnv1a_64``)."""
    h = 0xCBF29CE484222325
    for byte in text.encode("utf-8"):
        h = ((h ^ byte) * 0x100000001B3) % 2**64
    return h


# -- hashing ------------------------------------------------------------------------------
def test_fnv1a_64_matches_the_published_test_vectors() -> None:
    # from the FNV reference test suite (Fowler/Noll/Vo)
    got = fnv1a_64(["", "a", "foobar"])
    assert got.dtype == np.uint64
    assert got.tolist() == [0xCBF29CE484222325, 0xAF63DC4C8601EC8C, 0x85944171F73967E8]


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.text(
            # text as polars holds it: valid UTF-8 (no lone surrogates), no trailing NULs
            alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
            max_size=12,
        )
    )
)
def test_fnv1a_64_equals_its_definition(texts: list[str]) -> None:
    assert fnv1a_64(texts).tolist() == [reference_fnv1a_64(t) for t in texts]


def test_text_tokens_of_a_known_title() -> None:
    tokens = text_tokens(pl.Series(["Red  Shoe!"]), char_ngrams=(3,), word_bigrams=True)
    assert sorted(tokens["token"].to_list()) == sorted(
        [
            "w:red", "w:shoe", "b:red shoe",
            "c:<re", "c:red", "c:ed>",
            "c:<sh", "c:sho", "c:hoe", "c:oe>",
        ]
    )  # fmt: skip
    assert set(tokens["row"].to_list()) == {0}


def test_text_bucket_of_a_known_word() -> None:
    catalog = read_catalog(
        pl.DataFrame({"item": [7], "title": ["red"]}),
        text=["title"],
        text_buckets=1000,
        char_ngrams=(),
        word_bigrams=False,
    )
    feature = catalog.text["title"]
    assert feature.offsets.tolist() == [0, 1]
    # one token, "w:red", in bucket fnv1a("w:red") mod 1000
    assert feature.ids.tolist() == [reference_fnv1a_64("w:red") % 1000]


def test_text_bags_in_csr_form_with_empty_and_missing_texts() -> None:
    catalog = read_catalog(
        pl.DataFrame({"item": [1, 2, 3], "title": ["a b", None, "b"]}),
        text=["title"],
        text_buckets=2**20,
        char_ngrams=(),
    )
    feature = catalog.text["title"]
    # item 1: w:a, w:b, b:a b; item 2: nothing; item 3: w:b
    assert feature.offsets.tolist() == [0, 3, 3, 4]
    bucket = {t: reference_fnv1a_64(t) % 2**20 for t in ("w:a", "w:b", "b:a b")}
    assert sorted(feature.ids[:3].tolist()) == sorted(bucket.values())
    assert feature.ids[3] == bucket["w:b"]


# -- encodings by hand ----------------------------------------------------------------------
def test_categorical_codes_follow_frequency_then_value() -> None:
    catalog = read_catalog(
        pl.DataFrame({"item": [1, 2, 3, 4, 5], "brand": ["b", "a", "b", None, "a "]}),
        categorical=["brand"],
    )
    feature = catalog.categorical["brand"]
    # "a" and "b" twice each (values are stripped): ties by value; 0 is missing
    assert feature.vocabulary == ["a", "b"]
    assert feature.codes.tolist() == [2, 1, 2, 0, 1]
    assert feature.cardinality == 3
    assert feature.encode(["b", "zzz"]).tolist() == [2, 0]


def test_open_vocabularies_are_hashed_into_buckets() -> None:
    values = [f"v{i}" for i in range(6)]
    catalog = read_catalog(
        pl.DataFrame({"item": range(6), "seller": values}),
        categorical=["seller"],
        max_vocabulary=5,
        category_buckets=16,
    )
    feature = catalog.categorical["seller"]
    assert feature.vocabulary is None and feature.cardinality == 17
    expected = [1 + reference_fnv1a_64("v:" + v) % 16 for v in values]
    assert feature.codes.tolist() == expected
    assert feature.encode(["v3"]).tolist() == [expected[3]]


def test_numeric_standardisation_by_hand() -> None:
    catalog = read_catalog(
        pl.DataFrame({"item": [1, 2, 3, 4], "price": [2.0, None, 4.0, 6.0]}),
        numeric=["price"],
    )
    feature = catalog.numeric["price"]
    # present values 2, 4, 6: mean 4, population std sqrt(8/3)
    std = np.sqrt(8 / 3)
    assert feature.mean == pytest.approx(4.0)
    assert feature.std == pytest.approx(std)
    np.testing.assert_allclose(feature.values, [-2 / std, 0.0, 0.0, 2 / std], rtol=1e-6)
    assert feature.missing.tolist() == [False, True, False, False]
    assert feature.values.dtype == np.float32


def test_numbers_near_the_float64_limit_standardise_without_overflow() -> None:
    # found by fuzzing: the sum of two 1e308 "prices" is inf, and gave NaN features
    catalog = read_catalog(
        pl.DataFrame({"item": [1, 2, 3], "x": [1e308, 1.7e308, None]}), numeric=["x"]
    )
    x = catalog.numeric["x"]
    np.testing.assert_allclose(x.values, [-1.0, 1.0, 0.0])
    assert x.mean == pytest.approx(1.35e308) and x.std == pytest.approx(0.35e308)


def test_constant_numeric_column_keeps_std_one() -> None:
    catalog = read_catalog(pl.DataFrame({"item": [1, 2], "x": [3.0, 3.0]}), numeric=["x"])
    assert catalog.numeric["x"].std == 1.0
    assert catalog.numeric["x"].values.tolist() == [0.0, 0.0]


def test_vectors_become_a_float32_matrix() -> None:
    catalog = read_catalog(
        pl.DataFrame({"item": ["x", "y"], "emb": [[1.0, 2.0, 3.0], None]}), vector=["emb"]
    )
    feature = catalog.vector["emb"]
    assert feature.values.dtype == np.float32 and feature.dim == 3
    assert feature.values.tolist() == [[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]
    assert feature.missing.tolist() == [False, True]
    assert catalog.id_kind == "str" and catalog.ids.tolist() == ["x", "y"]


# -- schema inference -------------------------------------------------------------------
def test_roles_are_inferred_from_dtypes() -> None:
    frame = pl.DataFrame(
        {
            "item_id": [1, 2],
            "category": [10, 11],
            "brand": ["acme", "bolt"],
            "title": ["red shoe", "blue hat"],
            "price": [9.5, 3.0],
            "emb": [[0.0, 1.0], [1.0, 0.0]],
        }
    )
    catalog = read_catalog(frame)
    assert catalog.report["item_col"] == "item_id"
    assert catalog.report["roles"] == {
        "category": "categorical",
        "brand": "categorical",
        "title": "text",
        "price": "numeric",
        "emb": "vector",
    }


def test_roles_are_inferred_from_csv_text(tmp_path) -> None:
    path = tmp_path / "items.csv"
    path.write_text(
        'itemId;categoryId;price;title;emb\n1;5;2.5;red shoe;"[1, 2]"\n2;6;3;blue hat;"[3, 4]"\n'
    )
    catalog = read_catalog(path)
    assert catalog.report["roles"] == {
        "categoryId": "categorical",
        "price": "numeric",
        "title": "text",
        "emb": "vector",
    }
    assert catalog.ids.tolist() == [1, 2] and catalog.id_kind == "int"
    assert catalog.vector["emb"].values.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert catalog.numeric["price"].mean == pytest.approx(2.75)


def test_given_roles_override_inference_and_others_are_ignored() -> None:
    frame = pl.DataFrame({"item": [1, 2], "price_cents": [100, 300], "junk": ["a", "b"]})
    catalog = read_catalog(frame, numeric=["price_cents"])
    assert catalog.report["roles"] == {"price_cents": "numeric"}
    assert catalog.numeric["price_cents"].mean == 200.0
    both = read_catalog(frame, numeric=["price_cents"], infer=True)
    assert both.report["roles"] == {"price_cents": "numeric", "junk": "categorical"}


def test_parquet_ndjson_and_gzip_read_alike(tmp_path) -> None:
    frame = pl.DataFrame({"item": [1, 2], "cat": ["a", "b"]})
    frame.write_parquet(tmp_path / "c.parquet")
    frame.write_ndjson(tmp_path / "c.ndjson")
    with gzip.open(tmp_path / "c.csv.gz", "wt") as f:
        f.write("item,cat\n1,a\n2,b\n")
    for name in ("c.parquet", "c.ndjson", "c.csv.gz"):
        catalog = read_catalog(tmp_path / name)
        assert catalog.ids.tolist() == [1, 2], name
        assert catalog.categorical["cat"].codes.tolist() == [1, 2], name


# -- alignment by hand ---------------------------------------------------------------------
def test_align_orders_rows_like_the_vocabulary() -> None:
    catalog = read_catalog(
        pl.DataFrame(
            {
                "item": [30, 10, 20, 40],
                "cat": ["x", "y", "x", "z"],
                "price": [1.0, 2.0, 3.0, 4.0],
                "title": ["a", "b c", "", "d"],
            }
        ),
        categorical=["cat"],
        numeric=["price"],
        text=["title"],
        char_ngrams=(),
        word_bigrams=False,
    )
    vocab = ItemVocab([20, 99, 30])  # 99 has no catalog row; 10 and 40 have no clicks
    aligned = catalog.align(vocab)
    assert aligned.ids.tolist() == [20, 99, 30, 10, 40]
    assert aligned.n_vocab == 3
    assert aligned.n_without_clicks == 2
    assert aligned.n_without_content == 1
    assert aligned.cold_mask.tolist() == [False, False, False, True, True]
    assert aligned.has_content.tolist() == [True, False, True, True, True]
    # cat codes: x=1 (twice), y=2, z=3; 99 is unknown (0)
    assert aligned.categorical["cat"].codes.tolist() == [1, 0, 1, 2, 3]
    price = catalog.numeric["price"].values
    np.testing.assert_array_equal(
        aligned.numeric["price"].values, [price[2], 0.0, price[0], price[1], price[3]]
    )
    assert aligned.numeric["price"].missing.tolist() == [False, True, False, False, False]
    # text bags: 20 -> "", 99 -> unknown (empty), 30 -> a, 10 -> b c, 40 -> d
    t = aligned.text["title"]
    assert t.offsets.tolist() == [0, 0, 0, 1, 3, 4]
    bucket = {w: reference_fnv1a_64("w:" + w) % t.n_buckets for w in "abcd"}
    assert t.ids.tolist() == [bucket["a"], bucket["b"], bucket["c"], bucket["d"]]


def test_align_with_string_ids_and_vectors() -> None:
    catalog = read_catalog(pl.DataFrame({"sku": ["a", "b"], "emb": [[1.0], [2.0]]}), item_col="sku")
    aligned = catalog.align(ItemVocab(np.asarray(["b", "c"], dtype=object)))
    assert aligned.ids.tolist() == ["b", "c", "a"]
    assert aligned.vector["emb"].values.tolist() == [[2.0], [0.0], [1.0]]
    assert aligned.vector["emb"].missing.tolist() == [False, True, False]


def test_align_refuses_id_type_mismatch() -> None:
    catalog = read_catalog(pl.DataFrame({"item": ["a", "b"], "cat": ["x", "y"]}))
    with pytest.raises(SchemaError, match="item ids are str but the clickstream's are int"):
        catalog.align(ItemVocab([1, 2]))
    ints = read_catalog(pl.DataFrame({"item": [1, 2], "cat": ["x", "y"]}))
    with pytest.raises(SchemaError, match="id_type='str'"):
        ints.align(ItemVocab(np.asarray(["1", "2"], dtype=object)))
    # the documented fix
    fixed = read_catalog(pl.DataFrame({"item": [1, 2], "cat": ["x", "y"]}), id_type="str")
    assert fixed.align(ItemVocab(np.asarray(["2"], dtype=object))).ids.tolist() == ["2", "1"]


def test_align_twice_is_refused() -> None:
    catalog = read_catalog(pl.DataFrame({"item": [1], "cat": ["x"]}))
    with pytest.raises(ConfigError, match="already aligned"):
        catalog.align(ItemVocab([1])).align(ItemVocab([1]))


# -- errors -------------------------------------------------------------------------------
def test_unknown_columns_are_named() -> None:
    frame = pl.DataFrame({"item": [1], "category": ["x"]})
    with pytest.raises(SchemaError, match=r"no column 'categroy' \(given as categorical"):
        read_catalog(frame, categorical=["categroy"])
    with pytest.raises(SchemaError, match="no item id column 'id'"):
        read_catalog(frame, item_col="id")


def test_a_column_in_two_roles_or_the_id_as_a_feature_is_refused() -> None:
    frame = pl.DataFrame({"item": [1], "x": [1.0]})
    with pytest.raises(SchemaError, match="both numeric and vector"):
        read_catalog(frame, numeric=["x"], vector=["x"])
    with pytest.raises(SchemaError, match="is the item id"):
        read_catalog(frame, categorical=["item"])
    with pytest.raises(ConfigError, match="list of column names"):
        read_catalog(frame, numeric="x")  # type: ignore[arg-type]


def test_wrong_types_are_refused() -> None:
    frame = pl.DataFrame({"item": [1, 2], "emb": [[1.0], [2.0]], "name": ["a", "b"]})
    with pytest.raises(SchemaError, match="'emb' has dtype List.*cannot be numeric"):
        read_catalog(frame, numeric=["emb"])
    with pytest.raises(SchemaError, match="'emb' has dtype List.*cannot be categorical"):
        read_catalog(frame, categorical=["emb"])
    with pytest.raises(SchemaError, match="item column 'x' has dtype Float64"):
        read_catalog(pl.DataFrame({"x": [1.0], "c": ["a"]}), item_col="x")
    with pytest.raises(SchemaError, match="vector column holds lists of numbers"):
        read_catalog(pl.DataFrame({"item": [1], "v": [["a"]]}), vector=["v"])


def test_bad_numbers_and_vectors_are_bad_rows() -> None:
    frame = pl.DataFrame(
        {"item": ["1", "2", "3"], "price": ["1.5", "cheap", ""], "emb": ["[1, 2]", "[1, 2]", "[3]"]}
    )
    with pytest.raises(BadRowsError) as info:
        read_catalog(frame, numeric=["price"], vector=["emb"])
    message = str(info.value)
    assert "unparsable number in column 'price': 1 row(s), first at data row 2" in message
    assert "vector in column 'emb' not of length 2" in message and "data row 3" in message
    catalog = read_catalog(frame, numeric=["price"], vector=["emb"], on_bad_rows="skip")
    assert catalog.ids.tolist() == [1]
    assert catalog.report["rows_skipped"] == 2


def test_bad_ids_are_bad_rows() -> None:
    frame = pl.DataFrame({"item": ["1", "", "x2", "-3", "4"], "c": ["a"] * 5})
    with pytest.raises(BadRowsError, match="null or empty item id: 1 row"):
        read_catalog(frame, id_type="int")
    catalog = read_catalog(frame, id_type="int", on_bad_rows="skip")
    assert catalog.ids.tolist() == [1, 4]
    assert catalog.report["bad_rows"] == {
        "null or empty item id": 1,
        "non-integer item id": 1,
        "negative item id": 1,
    }


def test_duplicate_ids_are_refused() -> None:
    frame = pl.DataFrame({"item": [5, 6, 5], "c": ["a", "b", "c"]})
    with pytest.raises(
        SchemaError, match=r"1 item id\(s\) occur more than once.*first: 5, data rows 1 and 3"
    ):
        read_catalog(frame)
    catalog = read_catalog(frame, duplicate_ids="first")
    assert catalog.ids.tolist() == [5, 6]
    assert catalog.categorical["c"].vocabulary == ["a", "b"]
    assert catalog.report["duplicate_id_rows_dropped"] == 1
    with pytest.raises(ConfigError, match="duplicate_ids"):
        read_catalog(frame, duplicate_ids="last")  # type: ignore[arg-type]


def test_empty_catalogs_are_refused(tmp_path) -> None:
    with pytest.raises(EmptyDataError, match="no rows"):
        read_catalog(pl.DataFrame({"item": [], "c": []}, schema={"item": pl.Int64, "c": pl.String}))
    header_only = tmp_path / "h.csv"
    header_only.write_text("item,c\n")
    with pytest.raises(EmptyDataError):
        read_catalog(header_only)
    empty = tmp_path / "e.csv"
    empty.write_text("")
    with pytest.raises(EmptyDataError, match="0 bytes"):
        read_catalog(empty)
    with pytest.raises(ConfigError, match="no such file"):
        read_catalog(tmp_path / "missing.csv")


def test_bad_parameters_are_config_errors() -> None:
    frame = pl.DataFrame({"item": [1], "c": ["a"]})
    with pytest.raises(ConfigError, match="on_bad_rows"):
        read_catalog(frame, on_bad_rows="ignore")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="text_buckets"):
        read_catalog(frame, text_buckets=0)
    with pytest.raises(ConfigError, match="id_type"):
        read_catalog(frame, id_type="float")  # type: ignore[arg-type]


# -- persistence ----------------------------------------------------------------------------
def test_save_and_load_round_trip(tmp_path) -> None:
    catalog = read_catalog(
        pl.DataFrame(
            {
                "item": ["a", "b", "c"],
                "cat": ["x", "y", "x"],
                "title": ["red shoe", "", "blue"],
                "price": [1.0, None, 2.0],
                "emb": [[1.0, 0.0], [0.0, 1.0], None],
            }
        )
    ).align(ItemVocab(np.asarray(["c", "z"], dtype=object)))
    catalog.save(tmp_path / "cat")
    loaded = ItemCatalog.load(tmp_path / "cat")
    assert loaded.ids.tolist() == catalog.ids.tolist() and loaded.id_kind == "str"
    assert (loaded.n_vocab, loaded.n_without_clicks, loaded.n_without_content) == (2, 2, 1)
    assert loaded.categorical["cat"].codes.tolist() == catalog.categorical["cat"].codes.tolist()
    assert loaded.categorical["cat"].vocabulary == catalog.categorical["cat"].vocabulary
    np.testing.assert_array_equal(loaded.text["title"].ids, catalog.text["title"].ids)
    np.testing.assert_array_equal(loaded.text["title"].offsets, catalog.text["title"].offsets)
    np.testing.assert_array_equal(loaded.numeric["price"].values, catalog.numeric["price"].values)
    assert loaded.numeric["price"].mean == catalog.numeric["price"].mean
    np.testing.assert_array_equal(loaded.vector["emb"].values, catalog.vector["emb"].values)
    np.testing.assert_array_equal(loaded.has_content, catalog.has_content)
    assert json.loads((tmp_path / "cat" / "catalog.json").read_text())["format"]


def test_load_refuses_what_is_not_a_catalog(tmp_path) -> None:
    with pytest.raises(ArtifactError, match="no saved item catalog"):
        ItemCatalog.load(tmp_path)
    catalog = read_catalog(pl.DataFrame({"item": [1], "c": ["a"]}))
    catalog.save(tmp_path)
    (tmp_path / "catalog.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ArtifactError, match="not a sessionrec item catalog"):
        ItemCatalog.load(tmp_path)


# -- real data ------------------------------------------------------------------------------
def test_diginetica_sample_categories_align_to_the_srgnn_vocabulary() -> None:
    from sessionrec.data.protocol import ProtocolConfig, prepare

    folder = shared_dataset("diginetica-sample")
    catalog = read_catalog(folder / "product-categories.csv")
    assert catalog.report["item_col"] == "itemId"
    assert catalog.report["roles"] == {"categoryId": "categorical"}
    assert len(catalog) == 184_047  # the README's count
    dataset = prepare(folder / "sample_train-item-views.csv", ProtocolConfig.srgnn())
    assert len(dataset.vocab) == 309  # the protocol module's documented count
    aligned = catalog.align(dataset.vocab)
    assert aligned.n_vocab == 309
    assert aligned.n_without_content + int(aligned.has_content[:309].sum()) == 309
    assert aligned.n_without_clicks == len(catalog) - int(aligned.has_content[:309].sum())
    assert aligned.ids[:309].tolist() == dataset.vocab.ids.tolist()
    # spot-check: the category of a vocabulary item is its catalog row's category
    frame = pl.read_csv(folder / "product-categories.csv", separator=";")
    item = int(dataset.vocab.ids[0])
    category = frame.filter(pl.col("itemId") == item)["categoryId"].to_list()
    feature = aligned.categorical["categoryId"]
    if category:
        assert feature.vocabulary[feature.codes[0] - 1] == str(category[0])
    else:
        assert feature.codes[0] == 0


def test_fixed_size_arrays_are_vectors_and_non_finite_vectors_are_bad_rows() -> None:
    frame = pl.DataFrame(
        {"item": [1, 2, 3], "emb": [[1.0, 2.0], [float("nan"), 0.0], [3.0, None]]},
        schema={"item": pl.Int64, "emb": pl.Array(pl.Float64, 2)},
    )
    catalog = read_catalog(frame, on_bad_rows="skip")
    assert catalog.report["roles"] == {"emb": "vector"}
    assert catalog.report["rows_skipped"] == 2  # a NaN, a null element
    assert catalog.ids.tolist() == [1]
    assert catalog.vector["emb"].values.tolist() == [[1.0, 2.0]]
    with pytest.raises(SchemaError, match="empty lists"):
        read_catalog(
            pl.DataFrame(
                {"item": [1], "v": [[]]}, schema={"item": pl.Int64, "v": pl.List(pl.Float64)}
            )
        )


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(0, 30), min_size=1, max_size=15, unique=True),
    st.lists(st.integers(0, 30), max_size=15, unique=True),
    st.data(),
)
def test_align_keeps_every_item_with_its_own_features(
    catalog_ids: list[int], vocab_ids: list[int], data: st.DataObject
) -> None:
    prices = data.draw(
        st.lists(
            st.floats(-1e3, 1e3) | st.none(), min_size=len(catalog_ids), max_size=len(catalog_ids)
        )
    )
    cats = [str(i % 3) for i in catalog_ids]
    catalog = read_catalog(
        pl.DataFrame({"item": catalog_ids, "cat": cats, "price": prices}, strict=False),
        categorical=["cat"],
        numeric=["price"],
    )
    aligned = catalog.align(ItemVocab(np.asarray(vocab_ids, dtype=np.int64)))
    extra = [i for i in catalog_ids if i not in set(vocab_ids)]
    assert aligned.ids.tolist() == vocab_ids + extra
    assert aligned.n_without_clicks == len(extra)
    assert aligned.n_without_content == len(set(vocab_ids) - set(catalog_ids))
    row_of = {i: r for r, i in enumerate(catalog_ids)}
    for r, i in enumerate(aligned.ids.tolist()):
        if i in row_of:
            src = row_of[i]
            assert aligned.categorical["cat"].codes[r] == catalog.categorical["cat"].codes[src]
            assert aligned.numeric["price"].values[r] == catalog.numeric["price"].values[src]
            assert aligned.numeric["price"].missing[r] == catalog.numeric["price"].missing[src]
        else:
            assert aligned.categorical["cat"].codes[r] == 0
            assert aligned.numeric["price"].missing[r] and not aligned.has_content[r]


def test_auto_ids_with_leading_zeros_stay_text_as_in_clickstreams():
    """``00123`` read as an integer would become 123: under ``id_type="auto"`` the
    catalog keeps such ids as text, as the clickstream reader does."""
    padded = read_catalog(pl.DataFrame({"item_id": ["00123", "124"], "c": ["a", "b"]}))
    assert padded.id_kind == "str" and padded.ids.tolist() == ["00123", "124"]
    plain = read_catalog(pl.DataFrame({"item_id": ["123", "0"], "c": ["a", "b"]}))
    assert plain.id_kind == "int" and plain.ids.tolist() == [123, 0]
