"""Bad input gets a message, and no row of a data file is lost (issue #20, items 4, 6 and 8).

Ground truth is the input itself: a CSV file of n data rows gives n rows or an error that
names the line at fault; values that float32 cannot hold, complex numbers, a key that is
not a key and a negative number of draws are refused with a message saying what was given.
"""

from pathlib import Path

import jax
import numpy as np
import pytest

import helmholtz as hz
from helmholtz.data import load_array
from helmholtz.models.base import check_finite_array
from helmholtz.utils import as_key

LEGACY = Path(__file__).parent / "data" / "legacy_fits"


def _csv(tmp_path, text: str, encoding="utf-8"):
    path = tmp_path / "data.csv"
    path.write_bytes(text.encode(encoding))
    return path


# -- the CSV reader ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "1,2\n3,4\n5,6\n",
        "a,b\n1,2\n3,4\n5,6\n",
        "\ufeff1,2\n3,4\n5,6\n",
        "\ufeffa,b\n1,2\n3,4\n5,6\n",
        ",b\n1,2\n\n3,4\n5,6\n",
    ],
)
def test_every_data_row_is_read_with_or_without_header_and_byte_order_mark(tmp_path, text):
    np.testing.assert_array_equal(load_array(_csv(tmp_path, text)), [[1, 2], [3, 4], [5, 6]])


def test_a_byte_order_mark_from_excel_does_not_cost_the_first_row(tmp_path):
    rows = np.arange(400, dtype=float).reshape(200, 2)
    text = "\n".join(",".join(f"{v:g}" for v in row) for row in rows)
    assert load_array(_csv(tmp_path, text, encoding="utf-8-sig")).shape == (200, 2)


@pytest.mark.parametrize(
    "text, line, cell",
    [("2.O,3\n1,2\n", 1, "2.O"), ("2.O,x\n1,2\n", 1, "2.O"), ("a,b\n1,2\n3,4O\n", 3, "4O"), ("1,2\n\n3,\n", 3, "")],
)
def test_a_malformed_row_is_an_error_naming_its_line(tmp_path, text, line, cell):
    with pytest.raises(ValueError, match=rf"data\.csv does not hold a numeric array: line {line} holds {cell!r}"):
        load_array(_csv(tmp_path, text))


def test_rows_of_different_lengths_name_the_line(tmp_path):
    with pytest.raises(ValueError, match="different numbers of columns: line 3 has 3, line 1 has 2"):
        load_array(_csv(tmp_path, "1,2\n3,4\n5,6,7\n"))


def test_an_npz_key_that_is_not_there_is_a_value_error(tmp_path):
    np.savez(tmp_path / "data.npz", x=np.ones(3))
    with pytest.raises(ValueError, match="holds no array 'y'; it holds \\['x'\\]"):
        load_array(tmp_path / "data.npz", key="y")


# -- values the models cannot hold ----------------------------------------------------------


def test_values_beyond_float32_are_refused_not_turned_into_inf():
    with pytest.raises(ValueError, match=r"1 values beyond the float32 range .*index \(1, 0\): 1e\+39"):
        check_finite_array([[1.0, 2.0], [1e39, 3.0]], "FactorAnalysis")
    model = hz.models.FactorAnalysis(2, 1)
    with pytest.raises(ValueError, match="beyond the float32 range"):
        model.validate_data(np.array([[1.0, -1e39]]))


def test_complex_data_are_refused_not_silently_made_real():
    with pytest.raises(ValueError, match="data must be real numbers, got complex values"):
        check_finite_array(np.array([[1 + 2j, 3]]), "FactorAnalysis")
    with pytest.raises(ValueError, match="real numbers"):
        hz.models.FactorAnalysis(2, 1).validate_data([[1j, 2.0]])


def test_the_existing_messages_still_hold():
    with pytest.raises(ValueError, match="data contains 1 NaN and 1 infinite values"):
        check_finite_array([[np.nan, np.inf]], "M")
    with pytest.raises(ValueError, match="data must be numeric, got str"):
        check_finite_array("abc", "M")


# -- keys and draws -------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["abc", 1.5, True, None, np.zeros(2)])
def test_a_key_that_is_not_a_key_is_a_type_error_with_a_message(key):
    with pytest.raises(TypeError, match="key must be an int seed .* or a JAX random key"):
        as_key(key)


def test_keys_of_both_kinds_and_int_seeds_are_accepted():
    np.testing.assert_array_equal(as_key(3), jax.random.PRNGKey(3))
    np.testing.assert_array_equal(as_key(np.int64(3)), jax.random.PRNGKey(3))
    typed = jax.random.key(3)
    assert as_key(typed) is typed


def test_fit_and_sample_refuse_a_string_key():
    fit = hz.load(LEGACY / "svi.hz")
    with pytest.raises(TypeError, match="got str 'abc'"):
        fit.sample("abc", 10)


@pytest.mark.parametrize("num_draws", [-1, 0, 2.5, "10", True])
def test_sample_needs_a_positive_number_of_draws(num_draws):
    fit = hz.load(LEGACY / "nuts.hz")
    with pytest.raises(ValueError, match="num_draws must be a positive integer"):
        fit.sample(0, num_draws)
