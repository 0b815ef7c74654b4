"""Property-based tests: random and adversarial input gives a result or a message.

Over the loaders (CSV, NPZ), ``hz.load`` on random bytes and crafted zips, and the data
checks of models (``check_finite_array``, ``validate_data``): whatever the input, the
outcome is a valid result or a ValueError/TypeError whose message says something, never
another exception, a hang or a memory blow-up (every crafted file is small, and reading it
may not allocate more than the load limit). Properties that know the answer check it: a
CSV table of n numeric rows reads back as those n rows, whatever its header, byte-order
mark or blank lines.
"""

import io
import json
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import helmholtz as hz
from helmholtz.data import load_array
from helmholtz.models.base import check_finite_array
from helmholtz.models.simulators import GaussianLinear

FAST = settings(max_examples=50, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
LEGACY = Path(__file__).parent / "data" / "legacy_fits"
# Far below anything these small inputs could legitimately need: a crafted header that
# declares more is refused before anything is allocated.
LOAD_LIMIT = 2**20


def _outcome(call):
    """``call()``'s result, or the ValueError/TypeError it raised (with a message)."""
    try:
        return call()
    except (ValueError, TypeError) as error:
        assert str(error).strip(), f"{type(error).__name__} without a message"
        return error


def _in_file(suffix: str, payload: bytes, call):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"data{suffix}"
        path.write_bytes(payload)
        return _outcome(lambda: call(path))


# -- CSV -----------------------------------------------------------------------------------

CSV_TEXT = st.lists(
    st.sampled_from(list("0123456789.,-+eE \nxa\t") + ["\ufeff", "nan", "inf", "2.O", "\n\n"]), max_size=80
).map("".join)


@FAST
@given(CSV_TEXT)
def test_any_csv_text_reads_as_numbers_or_is_refused_with_a_message(text):
    outcome = _in_file(".csv", text.encode("utf-8"), load_array)
    if not isinstance(outcome, Exception):
        assert outcome.ndim == 2 and outcome.dtype == np.float64


@FAST
@given(
    rows=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=2, max_dims=2, max_side=6),
        elements=st.floats(-1e6, 1e6, allow_nan=False, width=32),
    ),
    header=st.booleans(),
    bom=st.booleans(),
    blank=st.booleans(),
)
def test_a_numeric_table_reads_back_with_every_row(rows, header, bom, blank):
    lines = [",".join(repr(float(v)) for v in row) for row in rows]
    if blank:
        lines.insert(len(lines) // 2, "")
    if header:
        lines.insert(0, ",".join(f"column {j}" for j in range(rows.shape[1])))
    text = ("\ufeff" if bom else "") + "\n".join(lines) + "\n"
    read = _in_file(".csv", text.encode("utf-8"), load_array)
    np.testing.assert_array_equal(read, rows)


# -- NPZ -----------------------------------------------------------------------------------


@FAST
@given(st.binary(max_size=400))
def test_random_bytes_as_npz_are_refused_with_a_message(payload):
    for prefix in (b"", b"PK\x03\x04"):
        outcome = _in_file(".npz", prefix + payload, load_array)
        assert isinstance(outcome, (ValueError, TypeError)) or np.issubdtype(outcome.dtype, np.number)


@FAST
@given(hnp.arrays(hnp.scalar_dtypes(), hnp.array_shapes(max_dims=3, max_side=4)), st.integers(0, 400))
def test_an_npz_array_reads_back_or_is_refused(array, cut):
    buffer = io.BytesIO()
    np.savez(buffer, x=array)
    payload = buffer.getvalue()
    whole = _in_file(".npz", payload, load_array)
    if np.issubdtype(array.dtype, np.number):
        np.testing.assert_array_equal(whole, array)
    else:
        assert isinstance(whole, ValueError)
    _in_file(".npz", payload[: len(payload) * cut // 400], load_array)  # cut short anywhere


# -- hz.load -------------------------------------------------------------------------------


def _load(path):
    return hz.load(path, max_array_bytes=LOAD_LIMIT)


@FAST
@given(st.binary(max_size=600))
def test_random_bytes_are_not_a_fit(payload):
    for prefix in (b"", b"PK\x03\x04", b"PK\x05\x06"):
        assert isinstance(_in_file(".hz", prefix + payload, _load), ValueError)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "__array__",
                    "__dict__",
                    "__tuple__",
                    "__list__",
                    "__class__",
                    "fields",
                    "arguments",
                    "__distribution__",
                    "format",
                    "kind",
                    "version",
                    "content",
                    "model",
                    "a0",
                ]
            )
            | st.text(max_size=4),
            inner,
            max_size=4,
        )
    ),
    max_leaves=20,
)
NPY_HEADERS = st.fixed_dictionaries(
    {
        "descr": st.sampled_from(["<f8", "<f4", "|u1", "<i8", "|O", "<c16"]),
        "fortran_order": st.booleans(),
        "shape": st.lists(st.integers(0, 10**7), max_size=4).map(tuple),
    }
)


def _npy_member(header: dict, data: bytes) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue() + data


@FAST
@given(
    content=JSON,
    kind=st.sampled_from(["fit", "model", 3]),
    version=st.sampled_from([1, 0, 2, "1", None]),
    headers=st.lists(NPY_HEADERS, max_size=3),
    data=st.binary(max_size=64),
    names=st.booleans(),
)
def test_crafted_zips_load_or_are_refused(content, kind, version, headers, data, names):
    if names:  # a manifest that names the members
        content = {"__list__": [{"__array__": f"a{i}"} for i in range(len(headers))] + [content]}
    manifest = {"format": "helmholtz", "kind": kind, "version": version, "content": content}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("helmholtz.json", json.dumps(manifest))
        for index, header in enumerate(headers):
            archive.writestr(f"arrays/a{index}.npy", _npy_member(header, data))
    _in_file(".hz", buffer.getvalue(), _load)


@FAST
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8))
def test_a_saved_fit_with_bytes_flipped_loads_or_is_refused(flips):
    payload = bytearray((LEGACY / "nuts.hz").read_bytes())
    for position, value in flips:
        payload[position % len(payload)] = value
    _in_file(".hz", bytes(payload), _load)


# -- data checks of models -----------------------------------------------------------------

ANY_ARRAY = hnp.arrays(
    st.sampled_from([np.float64, np.float32, np.int64, np.complex128, np.bool_]),
    hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
)
FLOAT_ARRAY = hnp.arrays(
    np.float64,
    hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
    elements=st.floats(allow_nan=True, allow_infinity=True),
)


@FAST
@given(
    st.one_of(
        ANY_ARRAY,
        FLOAT_ARRAY,
        st.text(max_size=5),
        st.lists(st.floats(), max_size=4),
        st.lists(st.lists(st.integers(), max_size=3), max_size=3),
        st.complex_numbers(),
    )
)
def test_check_finite_array_gives_finite_float32_data_or_a_message(x):
    outcome = _outcome(lambda: check_finite_array(x, "M"))
    if not isinstance(outcome, Exception):
        assert np.all(np.isfinite(np.asarray(outcome, dtype=np.float32)))


@FAST
@given(st.one_of(FLOAT_ARRAY, ANY_ARRAY, st.lists(st.floats(width=64), max_size=6)))
def test_validate_data_of_models_gives_valid_data_or_a_message(x):
    for model in (hz.models.FactorAnalysis(2, 1), GaussianLinear(dim=2)):
        outcome = _outcome(lambda model=model: model.validate_data(x))
        if not isinstance(outcome, Exception):
            assert np.all(np.isfinite(np.asarray(outcome, dtype=np.float32)))


@pytest.mark.parametrize("key", ["abc", 1.5, None, [1, 2], b"k"])
def test_keys_that_are_not_keys_are_type_errors(key):
    assert isinstance(_outcome(lambda: hz.load(LEGACY / "svi.hz").sample(key, 3)), TypeError)
