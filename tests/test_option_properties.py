"""Property tests of the back ends' option checks (issue #20: every option is validated up
front). Any value of any option, random or adversarial, either passes the check or is
refused with a ValueError or TypeError whose message names the option: never another
exception, which is what a user saw before (IndexError, a raw JAX TypeError, "range()
arg 3 must not be zero").

The checks run before any training, so they are exercised directly here; the tests in
test_training_options.py check that each back end calls them.
"""

from __future__ import annotations

import inspect
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helmholtz.inference.nuts import check_nuts_options
from helmholtz.inference.simulation_based import _run as run_simulation_based
from helmholtz.inference.simulation_based import check_simulation_options
from helmholtz.inference.training import AmortisedOptions, TrainingOptions

ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.integers(-5, 5), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
    st.complex_numbers(max_magnitude=10, allow_nan=False),
)
NUTS_DEFAULTS = {
    "num_chains": 2,
    "num_warmup": 500,
    "num_samples": 500,
    "target_accept_prob": 0.8,
    "max_tree_depth": 10,
    "dense_mass": False,
}
SIMULATION_DEFAULTS = {
    name: parameter.default
    for name, parameter in inspect.signature(run_simulation_based).parameters.items()
    if parameter.kind is inspect.Parameter.KEYWORD_ONLY and name != "simulation_bank"
}
PROPERTY_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _passes_or_names(check, name):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # small budgets warn; the warning is checked elsewhere
            check()
    except (ValueError, TypeError) as error:
        assert name in str(error), f"the message does not name {name!r}: {error}"


@PROPERTY_SETTINGS
@given(name=st.sampled_from(sorted(NUTS_DEFAULTS)), value=ANY_VALUE)
def test_any_nuts_option_passes_or_is_refused_by_name(name, value):
    _passes_or_names(lambda: check_nuts_options(**{**NUTS_DEFAULTS, name: value}), name)


@PROPERTY_SETTINGS
@given(name=st.sampled_from(sorted(SIMULATION_DEFAULTS)), value=ANY_VALUE, method=st.sampled_from(["npe", "nle"]))
def test_any_simulation_option_passes_or_is_refused_by_name(name, value, method):
    _passes_or_names(lambda: check_simulation_options(method, **{**SIMULATION_DEFAULTS, name: value}), name)


@PROPERTY_SETTINGS
@given(
    options=st.sampled_from([TrainingOptions(), AmortisedOptions()]),
    data=st.data(),
    value=ANY_VALUE,
)
def test_any_training_option_passes_or_is_refused_by_name(options, data, value):
    name = data.draw(st.sampled_from(sorted(options.names())))
    if name == "resume" and isinstance(value, str):
        value = f"/nonexistent/{value}"  # a path that is not there, never a file of the test run's
    _passes_or_names(lambda: options.replace("svi", **{name: value}), name)


@pytest.mark.parametrize(
    ("check", "message"),
    [
        (lambda: check_nuts_options(**{**NUTS_DEFAULTS, "target_accept_prob": 1.5}), r"target_accept_prob.*\(0, 1\)"),
        (lambda: check_nuts_options(**{**NUTS_DEFAULTS, "max_tree_depth": 0}), r"max_tree_depth.*positive integer"),
        (lambda: check_simulation_options("npe", **{**SIMULATION_DEFAULTS, "chunk_size": 0}), r"chunk_size"),
        (lambda: TrainingOptions().replace("svi", learning_rate=0.0), r"learning_rate"),
    ],
)
def test_the_values_users_met_are_refused(check, message):
    """The regression cases of issue #20, item 8 (each a raw exception or a silent fit before)."""
    with pytest.raises(ValueError, match=message):
        check()
