"""The posterior protocol (issue #18): declared capabilities, a clear error naming the back
ends that have a missing one, a registry of posterior kinds that ``load`` uses without
importing any back end, and no back-end imports inside the inference package."""

import ast
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import helmholtz as hz
from helmholtz.inference import (
    Amortised,
    ConditionsOnNewObservation,
    DrawsPosterior,
    LogDensity,
    MissingCapability,
    Posterior,
    posterior_kinds,
    register_posterior_kind,
)
from helmholtz.inference import posterior as protocol
from helmholtz.models import FactorAnalysis
from helmholtz.models.simulators import GaussianLinear

OBSERVATION = np.array([0.3, -0.2], np.float32)


def _draws_fit(model, method: str, draws: dict) -> hz.Fit:
    return hz.Fit(model, method, np.zeros((4, 2)), DrawsPosterior(draws))


def test_a_missing_capability_names_the_back_ends_that_have_it():
    fit = _draws_fit(
        FactorAnalysis(2, 1),
        "nuts",
        {"loadings": np.zeros((1, 3, 2, 1)), "mean": np.zeros((1, 3, 2)), "noise": np.ones((1, 3, 2))},
    )
    assert not fit.posterior.has(Amortised)
    message = r"encode needs an amortised fit.*: vae, wake-sleep, rws; this fit is 'nuts'"
    with pytest.raises(MissingCapability, match=message):
        fit.encode(np.ones((2, 2)))
    with pytest.raises(TypeError, match=r"decode needs an amortised fit.*vae, wake-sleep, rws"):
        fit.decode(np.ones((2, 1)))


class ShiftedNormalPosterior(Posterior):
    """A posterior kind no back end knows: loc + scale * N(0, 1) at every site."""

    kind = "test-shifted-normal"

    def __init__(self, loc: dict, scale: float):
        self.loc, self.scale = {name: jnp.asarray(value) for name, value in loc.items()}, float(scale)

    def sample(self, key, num_draws):
        keys = dict(zip(self.loc, jax.random.split(key, len(self.loc))))
        return {
            name: value + self.scale * jax.random.normal(keys[name], (num_draws, *value.shape))
            for name, value in self.loc.items()
        }

    def state(self):
        return {"loc": {name: np.asarray(value) for name, value in self.loc.items()}, "scale": self.scale}


def _rebuild_shifted_normal(model, observed, state, options):
    return ShiftedNormalPosterior(state["loc"], state["scale"])


def test_a_new_posterior_kind_saves_and_loads_through_the_registry(monkeypatch, tmp_path):
    monkeypatch.setattr(protocol, "_KINDS", dict(protocol._KINDS))  # registered for this test only
    register_posterior_kind(ShiftedNormalPosterior, rebuild=_rebuild_shifted_normal, methods=("test-method",))
    assert posterior_kinds()[ShiftedNormalPosterior.kind].methods == ("test-method",)
    model = FactorAnalysis(2, 1)
    posterior = ShiftedNormalPosterior({"loadings": np.ones((2, 1)), "mean": np.zeros(2), "noise": np.ones(1)}, 0.1)
    fit = hz.Fit(model, "test-method", jnp.asarray(np.random.default_rng(0).normal(size=(5, 2))), posterior)
    loaded = hz.load(fit.save(tmp_path / "fit.hz"))
    assert isinstance(loaded.posterior, ShiftedNormalPosterior) and loaded.method == "test-method"
    for name, value in fit.sample(3, 20).items():
        np.testing.assert_array_equal(np.asarray(loaded.sample(3, 20)[name]), np.asarray(value))
    # What the Fit writes once (here the model's exact marginal) works for the new kind too.
    x = np.zeros((3, 2))
    np.testing.assert_array_equal(loaded.log_marginal(x, key=1), fit.log_marginal(x, key=1))
    # A kind nobody registered is refused with the kinds that are.
    unregistered = {kind: entry for kind, entry in protocol._KINDS.items() if kind != ShiftedNormalPosterior.kind}
    monkeypatch.setattr(protocol, "_KINDS", unregistered)
    with pytest.raises(ValueError, match="unknown posterior kind 'test-shifted-normal'; registered kinds: .*draws"):
        hz.load(tmp_path / "fit.hz")


def test_coverage_asks_for_the_capability_and_names_npe():
    draws = {"theta_1": np.zeros((1, 4)), "theta_2": np.zeros((1, 4))}
    fit = hz.Fit(GaussianLinear(dim=2), "nuts", jnp.asarray(OBSERVATION), DrawsPosterior(draws))
    message = "expected_coverage needs .* back ends that give one: npe; this fit is 'nuts'"
    with pytest.raises(MissingCapability, match=message):
        hz.diagnostics.expected_coverage(fit, num_simulations=2)
    # The fit's method is only named, never tested: the posterior's capabilities decide.
    renamed = hz.Fit(GaussianLinear(dim=2), "npe", jnp.asarray(OBSERVATION), DrawsPosterior(draws))
    with pytest.raises(MissingCapability, match="back ends that give one: npe; this fit is 'npe'"):
        hz.diagnostics.expected_coverage(renamed, num_simulations=2)


def test_a_multi_round_npe_posterior_reports_that_it_is_not_amortised(tmp_path):
    """Also when loaded from a file whose posterior state does not say (the rounds come
    from the Fit's saved options)."""
    with pytest.warns(UserWarning, match="max_num_epochs"):
        fit = hz.fit(
            GaussianLinear(dim=2),
            OBSERVATION,
            method="npe",
            key=0,
            num_simulations=200,
            num_rounds=2,
            max_num_epochs=2,
            progress_bar=False,
        )
    loaded = hz.load(fit.save(tmp_path / "npe.hz"))
    assert "num_rounds" not in fit.posterior.state()
    for posterior in (fit.posterior, loaded.posterior):
        assert posterior.has(LogDensity) and not posterior.has(ConditionsOnNewObservation)
        with pytest.raises(MissingCapability, match="this 'npe' fit has none: a multi-round NPE posterior is focused"):
            hz.diagnostics.expected_coverage(hz.Fit(fit.model, fit.method, fit.observed, posterior), num_simulations=2)


# -- no back-end imports inside the inference package -------------------------------------
INFERENCE = Path(hz.__file__).parent / "inference"
BACK_ENDS = {"nuts", "svi", "vae", "wake_sleep", "simulation_based"}
# The machinery the amortised back ends share (not a back end of its own, it registers
# none) may be imported by those back ends, and by no other module.
SHARED_BY = {"amortised": {"vae", "wake_sleep"}}


def _imported_modules(source: str) -> set[str]:
    """Every helmholtz.inference submodule the source imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # a relative import inside helmholtz/inference
                base = "helmholtz.inference" + (f".{base}" if base else "")
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name.startswith("helmholtz.inference."):
                found.add(name.split(".")[2])
    return found


def test_the_import_check_sees_every_form_of_import():
    source = "import helmholtz.inference.svi\nfrom helmholtz.inference import vae\ndef f():\n    from .nuts import x\n"
    assert _imported_modules(source) == {"svi", "vae", "nuts"}


def test_no_inference_module_but_the_package_imports_a_back_end():
    offenders = {}
    for path in sorted(INFERENCE.glob("*.py")):
        if path.name == "__init__.py":
            continue
        allowed = {shared for shared, users in SHARED_BY.items() if path.stem in users}
        imported = _imported_modules(path.read_text()) & (BACK_ENDS | set(SHARED_BY))
        if imported - allowed - {path.stem}:
            offenders[path.name] = sorted(imported - allowed - {path.stem})
    assert not offenders, f"modules importing a back end: {offenders}"
    assert BACK_ENDS <= _imported_modules((INFERENCE / "__init__.py").read_text())
