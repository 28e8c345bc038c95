"""Read an item catalog (item content) and encode it into arrays for the content encoder.

A catalog is one row per item: an item id column plus any number of feature columns.
Each feature column has a *role*:

==============  ==========================================================================
role            encoding (per item ``i``)
==============  ==========================================================================
categorical     an int code: ``0`` is unknown/missing, ``1 .. V`` the vocabulary (values
                by falling frequency, ties by value). A column with more than
                ``max_vocabulary`` distinct values is *hashed*:
                :math:`1 + \\mathrm{fnv}(\\texttt{"v:"} + value) \\bmod B_{cat}`.
text            a bag of hashed n-grams (CSR: ``offsets [n + 1]``, ``ids [nnz]``): the text
                is lower-cased and cut into words (``\\w+``); the bag holds every word
                (``"w:" + word``), every pair of adjacent words (``"b:" + w1 + " " + w2``)
                and the character n-grams of ``"<" + word + ">"`` (``"c:" + gram``, for
                each ``n`` in ``char_ngrams``); each token's id is
                :math:`\\mathrm{fnv}(token) \\bmod B_{text}`. Words are cut to 32 chars.
numeric         :math:`(x_i - \\mu) / \\sigma` (mean and population std of the present
                values; :math:`\\sigma = 1` if it is 0) as float32; a missing value
                (null, NaN, inf) is ``0`` with ``missing[i] = True``.
vector          a float32 matrix ``[n, dim]`` (lists of numbers from any external encoder;
                every row the same length); a null row is zeros with ``missing[i] = True``.
==============  ==========================================================================

:math:`\\mathrm{fnv}` is 64-bit FNV-1a over the UTF-8 bytes (:func:`fnv1a_64`): stable
across processes, platforms and library versions (unlike Python's ``hash()``).

Schema inference (for columns whose role is not given): integer columns (and text columns
whose values are all integers, e.g. ``categoryId`` in a CSV) are categorical codes,
floating-point columns (and text holding numbers) numeric, lists of numbers (and text
that starts with ``[``, read as JSON lists) vectors; other text is ``text`` when some
value has a space and ``categorical`` otherwise. Integer quantities such as a price in
cents must be declared ``numeric=[...]``. Text columns are decided from their first 1,000
non-empty values.

Every item id must occur once (``duplicate_ids="first"`` keeps the first row of each item
instead, e.g. for a catalog that lists an item once per category). Bad rows (null or
invalid ids, unparsable numbers, vectors of another length or with non-finite numbers)
raise :class:`~sessionrec.errors.BadRowsError`, or are dropped and counted with
``on_bad_rows="skip"``.

:meth:`ItemCatalog.align` reorders the rows into a vocabulary's index order (catalog
items without clicks appended after it, vocabulary items without a catalog row given
unknown features), which is the table the model indexes.

The package's modules: :mod:`~sessionrec.data.catalog.hashing` (FNV-1a, text tokens,
hash buckets), :mod:`~sessionrec.data.catalog.features` (the encoded features and
:class:`ItemCatalog`), :mod:`~sessionrec.data.catalog.columns` (role inference and the
reader of each role), :mod:`~sessionrec.data.catalog.reading` (:func:`read_catalog`).

This package imports numpy and polars; it is not imported by the serving path.
"""

from __future__ import annotations

from sessionrec.data.catalog.features import (
    ROLES,
    CategoricalFeature,
    ItemCatalog,
    NumericFeature,
    TextFeature,
    VectorFeature,
)
from sessionrec.data.catalog.hashing import fnv1a_64, text_tokens
from sessionrec.data.catalog.reading import read_catalog

__all__ = [
    "ROLES",
    "CategoricalFeature",
    "TextFeature",
    "NumericFeature",
    "VectorFeature",
    "ItemCatalog",
    "read_catalog",
    "fnv1a_64",
    "text_tokens",
]
