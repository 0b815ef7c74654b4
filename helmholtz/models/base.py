"""The model protocol shared by every family of the zoo.

A model is a frozen dataclass (so it can be saved and compared) that says what it
supports, samples its prior, simulates data and, where it has a likelihood, exposes a
NumPyro program. The sample and simulate methods here are derived from that program by
NumPyro's effect handlers, so a latent-variable model is written once, as one program.

Site conventions inside a program:
- the observations are the sample site ``"x"``;
- per-data-point latents live inside a plate named ``"data"``; every other latent site is
  a global parameter.

:meth:`Model.check_declaration` checks these conventions and that the model is hashable,
with an error that says what to change; a model class that cannot be hashed (a dataclass
that is not frozen) is refused when it is instantiated.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from numpyro import handlers
from numpyro.infer import Predictive
from numpyro.infer.initialization import init_to_uniform

from helmholtz.utils import as_key

OBSERVED_SITE = "x"
DATA_PLATE = "data"


class Sites(NamedTuple):
    """The sample sites of a model's program, by role.

    Args:
        global_latents: the names of the latent sample sites outside the plate ``"data"``.
        local_latents: the names of the latent sample sites inside the plate ``"data"``.
        deterministic: the names of the deterministic sites.
    """

    global_latents: tuple[str, ...]
    local_latents: tuple[str, ...]
    deterministic: tuple[str, ...]


class Conditioned(NamedTuple):
    """The data of a conditional model: observations ``x`` (one row per data point) and
    the covariates ``y`` each row is conditioned on (a class label, a stimulus), row by
    row: ``hz.fit(model, Conditioned(x, y), key, method=...)``.

    A pytree, so minibatches, ``jit`` and ``vmap`` take rows of both together. ``x`` is
    None where the program is to simulate observations for the covariates ``y``.

    Args:
        x: the observations, one row per data point, shape ``(num_points, ...)``; or None.
        y: the covariates of each row, shape ``(num_points, ...)``.
    """

    x: Any
    y: Any


def num_rows(data) -> int:
    """The number of data points (rows) of an array or a :class:`Conditioned`.

    Args:
        data: an array or a :class:`Conditioned` (its first part that is not None is read).

    Returns:
        The length of its leading axis, ``num_points``.
    """
    parts = data if isinstance(data, Conditioned) else (data,)
    return int(np.shape(next(part for part in parts if part is not None))[0])


def take_rows(data, indices):
    """The rows ``indices`` of an array or of both parts of a :class:`Conditioned`.

    Args:
        data: an array or a :class:`Conditioned`.
        indices: the rows to take (an index array or slice).

    Returns:
        The same kind of data, holding those rows only.
    """
    return jax.tree.map(lambda part: jnp.asarray(part)[indices], data)


def observations(data):
    """The observed array of ``data`` (what the site ``"x"`` sees).

    Args:
        data: an array or a :class:`Conditioned`.

    Returns:
        ``data.x`` for a :class:`Conditioned`, else ``data`` itself.
    """
    return data.x if isinstance(data, Conditioned) else data


def unobserved(data):
    """The program input that simulates new observations in place of ``data``'s: its
    covariates for a conditional model, None otherwise.

    Args:
        data: an array or a :class:`Conditioned`.

    Returns:
        ``data`` with ``x=None`` for a :class:`Conditioned`, else None.
    """
    return data._replace(x=None) if isinstance(data, Conditioned) else None


def with_observations(data, x):
    """``data`` with its observations replaced by ``x`` (covariates kept).

    Args:
        data: an array or a :class:`Conditioned`.
        x: the new observations.

    Returns:
        A :class:`Conditioned` with ``x`` in place of its observations, or ``x`` itself.
    """
    return data._replace(x=x) if isinstance(data, Conditioned) else x


class SiteInfo(NamedTuple):
    """What :meth:`Model.check_declaration` reads of one site of a traced program.

    Args:
        type: the site's type: ``"sample"``, ``"deterministic"`` or ``"param"``.
        is_observed: whether the site is conditioned on data.
        is_factor: whether the site is a ``numpyro.factor`` (a sample of a unit distribution).
        shape: the shape of the site's value.
    """

    type: str
    is_observed: bool
    is_factor: bool
    shape: tuple[int, ...]


def _unhashable_class_message(name: str) -> str:
    return (
        f"{name} cannot be hashed, and back ends cache their compiled code by model: a model is a frozen "
        f"dataclass. Declare it with @dataclass(frozen=True) (add eq=False if a field holds arrays)"
    )


class Model:
    """A declared generative model. Subclasses are frozen dataclasses.

    A model class of your own: subclass this, decorate it with ``@dataclass(frozen=True)``
    (``eq=False`` if a field holds arrays) and, to save fits of it, with
    :func:`helmholtz.serializable`; write :meth:`program` with the observations as the
    sample site ``"x"`` and per-data-point latents in the plate ``"data"``. A model from a
    plain NumPyro function needs no class: :class:`helmholtz.models.Program`.

    Args:
        *args: the subclass's dataclass fields, by position.
        **kwargs: the subclass's dataclass fields, by name.

    Raises:
        TypeError: the class cannot be hashed (a dataclass that is not frozen).
    """

    has_likelihood: ClassVar[bool] = True
    can_simulate: ClassVar[bool] = True
    has_local_latents: ClassVar[bool] = False

    def __new__(cls, *args, **kwargs):
        # A dataclass with eq=True that is not frozen sets __hash__ to None; refused here,
        # before a back end's cache fails on it with "unhashable type".
        if cls.__hash__ is None:
            raise TypeError(_unhashable_class_message(cls.__name__))
        return super().__new__(cls)

    @property
    def name(self) -> str:
        return type(self).__name__

    # -- what subclasses provide -------------------------------------------------------
    def program(self, x=None, *, num_points: int | None = None):
        """The NumPyro program: priors, then the likelihood of ``x`` (sampled if None).

        Args:
            x: the data, as :meth:`validate_data` returns them, shape ``(num_points, ...)``;
                None to simulate them.
            num_points: the number of data points to simulate when ``x`` is None.

        Raises:
            NotImplementedError: the model has no likelihood program (the default).
        """
        raise NotImplementedError(f"{self.name} has no likelihood program")

    def validate_data(self, x) -> jnp.ndarray:
        """Return ``x`` as an array, or raise ValueError saying what is wrong with it.

        Args:
            x: the data as the user passes them.

        Returns:
            The data as a JAX array (by default: a float array with no NaN or inf).

        Raises:
            ValueError: saying what is wrong with the data.
        """
        return check_finite_array(x, self.name)

    def num_points_of(self, x) -> int | None:
        """How many independent data points ``x`` holds (passed back to the program).

        Args:
            x: the data, as :meth:`validate_data` returns them, or None.

        Returns:
            ``num_points``, the length of the leading axis (by default), or None if ``x`` is None.
        """
        return None if x is None else num_rows(x)

    # -- optional hooks: a model that can do more overrides them --------------------------
    def marginal_distribution(self, params):
        """p(x_i | theta), a NumPyro distribution with the local latents removed exactly
        (closed form or enumeration), at global parameters ``params`` (by site name).

        Args:
            params: one value of each global parameter, by site name.

        Returns:
            The distribution of one data point.

        Raises:
            TypeError: the model has none (the default).
        """
        raise TypeError(f"{self.name} has no exact marginal likelihood over its local latents")

    def make_encoder(self, num_outputs: int, key):
        """The encoder network the amortised back ends (``vae``, ``wake-sleep``, ``rws``) train
        for this model, or None (the default) for the zoo's MLP on each flattened data point.

        Args:
            num_outputs: the size of the network's output for one data point.
            key: a JAX PRNG key for its initial weights.

        Returns:
            An Equinox module from one data point, as the data holds it, to ``num_outputs``
            values; or None.
        """
        return None

    @property
    def continuous_latents(self) -> bool:
        """True when every latent the program samples is continuous (so NUTS applies)."""
        trace = self._trace()
        return all(
            not site["fn"].support.is_discrete
            for name, site in trace.items()
            if site["type"] == "sample" and not site["is_observed"] and name != OBSERVED_SITE
        )

    # -- checking a declaration ---------------------------------------------------------
    def check_declaration(self, x=None) -> None:
        """Check the conventions the back ends rely on; raise an error that says what to change.

        The model must be hashable (back ends cache compiled code by model), and a model
        with a likelihood must sample its observations at the site ``"x"``, conditioned on
        the data (``numpyro.sample("x", distribution, obs=x)``): otherwise a fit would
        silently sample the prior, and the ArviZ export would find no likelihood.

        Args:
            x: the data, as :meth:`validate_data` returns them; None checks the program
                without data (it cannot then check that the data are conditioned on).

        Raises:
            TypeError: the model cannot be hashed.
            ValueError: the program breaks the observed-site convention.
        """
        try:
            hash(self)
        except TypeError as error:
            raise TypeError(
                f"{self.name} cannot be hashed ({error}), and back ends cache their compiled code by model: "
                "a model holding arrays must be declared @dataclass(frozen=True, eq=False), or hold tuples"
            ) from None
        if self.has_likelihood:
            self._check_observed_site(self.site_info(x), x)

    def site_info(self, x=None, num_points: int | None = None) -> dict[str, SiteInfo]:
        """Every sample, deterministic and param site of the program run on the data ``x``
        (None: simulating ``num_points`` data points, default 2), by name. The program is
        traced abstractly (``jax.eval_shape``), so nothing is computed.

        Args:
            x: the data, as :meth:`validate_data` returns them, or None.
            num_points: the number of data points to simulate when ``x`` is None (default 2);
                by default, :meth:`num_points_of` ``x``.

        Returns:
            A :class:`SiteInfo` for each site, by site name.
        """
        found: dict[str, SiteInfo] = {}
        if num_points is None:
            num_points = 2 if x is None else self.num_points_of(x)

        def run(data):
            for name, site in self._trace(data, num_points=num_points).items():
                if site["type"] in ("sample", "deterministic", "param"):
                    is_factor = site["type"] == "sample" and isinstance(_innermost(site["fn"]), dist.Unit)
                    found[name] = SiteInfo(
                        site["type"],
                        bool(site.get("is_observed")),
                        is_factor,
                        tuple(getattr(site["value"], "shape", ())),
                    )
            return 0.0

        jax.eval_shape(run, x)
        return found

    def _check_observed_site(self, sites: dict[str, SiteInfo], x) -> None:
        factors = [name for name, site in sites.items() if site.is_factor]
        site = sites.get(OBSERVED_SITE)
        if site is None or site.type != "sample" or site.is_factor:
            observed = [name for name, s in sites.items() if s.type == "sample" and s.is_observed and not s.is_factor]
            problem = (
                f"{self.name}: its program has no sample site {OBSERVED_SITE!r} for the observations"
                if site is None
                else f"{self.name}: its program's site {OBSERVED_SITE!r} is a "
                f"{site.type if not site.is_factor else 'factor'}, not a sample site of the observations"
            )
            advice = [
                f"{problem} (the convention: numpyro.sample({OBSERVED_SITE!r}, distribution, obs=x)), so the data "
                f"would never be conditioned on. Its sites: {sorted(sites)}."
            ]
            if observed:
                advice.append(f"Rename its observed site {observed[0]!r} to {OBSERVED_SITE!r}.")
            if factors:
                advice.append(
                    f"A likelihood written with numpyro.factor ({', '.join(map(repr, factors))}) cannot be simulated "
                    "or exported: write it as a distribution of the data, numpyro.sample('x', distribution, obs=x) "
                    "(a density numpyro.distributions lacks can subclass numpyro.distributions.Distribution)."
                )
            raise ValueError(" ".join(advice))
        if x is not None and not site.is_observed:
            raise ValueError(
                f"{self.name}: its program's site {OBSERVED_SITE!r} is not conditioned on the data: pass them as "
                f"numpyro.sample({OBSERVED_SITE!r}, distribution, obs=x), with x the program's first argument"
            )

    # -- derived from the program ------------------------------------------------------
    def _trace(self, x=None, num_points: int = 2):
        # Values come from NumPyro's initialisation strategy rather than the prior, so
        # programs with improper priors (no sampler) can be traced too.
        seeded = handlers.seed(self.program, jax.random.PRNGKey(0))
        substituted = handlers.substitute(seeded, substitute_fn=init_to_uniform)
        return handlers.trace(substituted).get_trace(x, num_points=num_points)

    def sites(self) -> Sites:
        """The latent and deterministic sites of the program, by role (a :class:`Sites`)."""
        trace = self._trace()
        global_latents, local_latents, deterministic = [], [], []
        for name, site in trace.items():
            if site["type"] == "deterministic":
                deterministic.append(name)
            elif site["type"] == "sample" and name != OBSERVED_SITE and not site["is_observed"]:
                in_data_plate = any(frame.name == DATA_PLATE for frame in site["cond_indep_stack"])
                (local_latents if in_data_plate else global_latents).append(name)
        return Sites(tuple(global_latents), tuple(local_latents), tuple(deterministic))

    def sample_prior(self, key, num_draws: int) -> dict[str, jnp.ndarray]:
        """``num_draws`` draws of the global parameters (and deterministic functions of them).

        Args:
            key: a JAX PRNG key (or an integer seed).
            num_draws: the number of draws.

        Returns:
            The draws by site name, each with a leading axis ``num_draws``.
        """
        sites = self.sites()
        predictive = Predictive(
            self.program, num_samples=num_draws, return_sites=list(sites.global_latents + sites.deterministic)
        )
        return predictive(as_key(key), None, num_points=1)

    def identifiable_parameters(self, params: dict) -> dict[str, jnp.ndarray]:
        """The functions of the global parameters that the data can pin down.

        Calibration checks rank these. By default every global parameter; models with a
        symmetry (rotating factor loadings, relabelling states) return invariants instead.

        Args:
            params: values of the global parameters by site name (any leading batch axes).

        Returns:
            The identifiable functions by name, with the same leading axes.
        """
        return {name: params[name] for name in self.sites().global_latents if name in params}

    def simulate(self, key, params: dict, num_points: int | None = None) -> jnp.ndarray:
        """Simulate one data set from the parameters ``params`` (one draw, unbatched).

        Args:
            key: a JAX PRNG key (or an integer seed).
            params: one value of each global parameter, by site name.
            num_points: the number of data points to simulate (the program's default if None).

        Returns:
            The simulated observations, shape ``(num_points, ...)``.
        """
        conditioned = handlers.condition(self.program, data=params)
        trace = handlers.trace(handlers.seed(conditioned, as_key(key))).get_trace(None, num_points=num_points)
        return trace[OBSERVED_SITE]["value"]

    def replicate(self, key, draws: dict, num_points: int | None = None) -> jnp.ndarray:
        """Replicated data sets, one per parameter draw (a leading axis in ``draws``).

        Args:
            key: a JAX PRNG key (or an integer seed).
            draws: parameter draws by site name, each with a leading axis ``num_draws``.
            num_points: the number of data points in each data set (the program's default if None).

        Returns:
            The replicated observations, shape ``(num_draws, num_points, ...)``.
        """
        predictive = Predictive(self.program, posterior_samples=draws, return_sites=[OBSERVED_SITE])
        return predictive(as_key(key), None, num_points=num_points)[OBSERVED_SITE]


def _innermost(distribution):
    """The distribution under NumPyro's wrappers (Independent, Expanded, Masked)."""
    while hasattr(distribution, "base_dist"):
        distribution = distribution.base_dist
    return distribution


# The private name, for the modules that still import it from here; use helmholtz.utils.as_key.
_as_key = as_key


def check_finite_array(x, owner: str, *, ndim: int | None = None, last_dim: int | None = None) -> jnp.ndarray:
    """The data checks every model shares: numeric, the right shape, no NaN or inf.

    For a model's :meth:`~Model.validate_data`:
    ``return hz.models.check_finite_array(x, self.name, ndim=2)``.

    Args:
        x: the data.
        owner: the name the error messages start with (the model's name).
        ndim: the number of dimensions the data must have, if any.
        last_dim: the size the last dimension must have, if any.

    Returns:
        ``x`` as a float JAX array.

    Raises:
        ValueError: saying what is wrong: missing, not numeric, the wrong shape, empty,
            or NaN or infinite values (with the index of the first).
    """
    if x is None:
        raise ValueError(f"{owner}: data is missing (got None)")
    try:
        if np.iscomplexobj(x):
            raise ValueError(f"{owner}: data must be real numbers, got complex values (take .real or abs() first)")
        array = np.asarray(x, dtype=float)
    except (TypeError, ValueError, OverflowError) as error:
        if str(error).startswith(f"{owner}:"):
            raise
        raise ValueError(f"{owner}: data must be numeric, got {type(x).__name__}") from None
    if ndim is not None and array.ndim != ndim:
        expected = "(num_points, obs_dim)" if ndim == 2 else f"{ndim} dimensions"
        raise ValueError(f"{owner}: data must have shape {expected}, got shape {array.shape}")
    if last_dim is not None and array.shape[-1] != last_dim:
        raise ValueError(f"{owner}: each data point must have {last_dim} values, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{owner}: data is empty (shape {array.shape})")
    bad = ~np.isfinite(array)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{owner}: data contains {int(np.isnan(array).sum())} NaN and "
            f"{int(np.isinf(array).sum())} infinite values (first at index {where}); "
            "remove or impute them before fitting"
        )
    # Models compute in float32 (JAX's default): larger values would become inf there.
    huge = np.abs(array) > np.finfo(np.float32).max
    if huge.any():
        where = tuple(int(i) for i in np.argwhere(huge)[0])
        raise ValueError(
            f"{owner}: data contains {int(huge.sum())} values beyond the float32 range (|x| > 3.4e38, first at "
            f"index {where}: {array[where]:.3g}), which would become inf; rescale the data"
        )
    return jnp.asarray(array)
