"""The simulator protocol: models known only through a stochastic program ``theta -> x``.

A simulator declares its parameters (each a :class:`~helmholtz.priors.Parameter`: a name and
any NumPyro distribution as its prior, scalar or a joint prior over a vector), simulates one data set from one
parameter vector as a pure JAX function, and says which summary statistics of a data set
inference should condition on. Everything batched is derived here once: many simulations
in chunks that fit memory, spread over every local device with ``jax.sharding`` (and, on a
CPU, one chunk per core at a time), each simulation seeded by its own index so the result
does not depend on the chunk size, the number of devices or the order chunks finish in.

Simulators have no likelihood, so they are fit by the simulation-based back ends (``npe``,
``nle``, ``nre``). Their NumPyro ``program`` is the prior alone, one site per parameter,
which is what sampling the prior, calibration checks and ArviZ export need. Batched
methods take parameter vectors ``theta``, shape ``(num_simulations, num_theta)``: each parameter flattened, in the
declared order (:attr:`Simulator.theta_names` labels the columns).
"""

from __future__ import annotations

import functools
import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from tqdm.auto import tqdm

from helmholtz.models.base import Model, check_finite_array
from helmholtz.priors import Normal, Parameter, Uniform  # noqa: F401  (Normal, Uniform: re-exported shorthands)
from helmholtz.utils import as_key


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


class Simulator(Model):
    """A model given by a simulator. Subclasses are frozen dataclasses (``eq=False``
    when they hold arrays) that provide :attr:`parameters`, :attr:`observation_shape`
    and :meth:`simulate_one`, and may override :meth:`summarize`.

    Args:
        *args: the subclass's dataclass fields, by position.
        **kwargs: the subclass's dataclass fields, by name.
    """

    has_likelihood: ClassVar[bool] = False
    can_simulate: ClassVar[bool] = True

    # -- what subclasses provide -------------------------------------------------------
    @property
    def parameters(self) -> tuple[Parameter, ...]:
        raise NotImplementedError

    @property
    def observation_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    def simulate_one(self, key, theta: jnp.ndarray) -> jnp.ndarray:
        """One data set of shape :attr:`observation_shape` from one parameter vector.
        Pure and vmappable: every batched method is derived from it.

        Args:
            key: a JAX PRNG key.
            theta: one parameter vector, shape ``(num_theta,)``.

        Returns:
            The data set, shape :attr:`observation_shape`.
        """
        raise NotImplementedError

    def summarize(self, x: jnp.ndarray) -> jnp.ndarray:
        """Summary statistics of data sets that inference conditions on; the identity
        (flattened) by default. Must be jittable and return NaN rather than raise for a
        data set that blew up.

        Args:
            x: data sets, shape ``(num_simulations, *observation_shape)``.

        Returns:
            The summaries, shape ``(num_simulations, num_features)``.
        """
        return x.reshape(x.shape[0], -1)

    @property
    def feature_names(self) -> tuple[str, ...]:
        size = int(np.prod(self.observation_shape))
        return tuple(f"x_{i}" for i in range(size))

    # -- the prior ---------------------------------------------------------------------
    @property
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(parameter.name for parameter in self.parameters)

    @property
    def num_theta(self) -> int:
        """The length of a parameter vector theta: every parameter's values, flattened."""
        return sum(parameter.size for parameter in self.parameters)

    @property
    def theta_names(self) -> tuple[str, ...]:
        """A label per entry of theta: the name of a scalar parameter, ``name[i]`` for the
        entries of a vector one."""
        return tuple(
            name
            for p in self.parameters
            for name in ([p.name] if not p.shape else [f"{p.name}[{i}]" for i in range(p.size)])
        )

    def program(self, x=None, *, num_points=None):
        """The prior over the parameters, one site each (simulators have no likelihood).

        Args:
            x: ignored (there is no likelihood).
            num_points: ignored.
        """
        for parameter in self.parameters:
            numpyro.sample(parameter.name, parameter.prior)

    def sample_prior(self, key, num_draws: int) -> dict[str, jnp.ndarray]:
        """``num_draws`` draws of each parameter from its prior.

        Args:
            key: a JAX PRNG key (or an integer seed).
            num_draws: the number of draws.

        Returns:
            The draws by parameter name, each shape ``(num_draws, *parameter.shape)``.
        """
        keys = jax.random.split(as_key(key), len(self.parameters))
        return {p.name: p.prior.sample(k, (num_draws,)) for p, k in zip(self.parameters, keys)}

    def log_prior(self, theta) -> jnp.ndarray:
        """log p(theta) of parameter vectors: the sum over parameters.

        Args:
            theta: parameter vectors, shape ``(..., num_theta)``.

        Returns:
            The log prior densities, shape ``(...)``.
        """
        params = self.params_of(theta)
        return sum(p.prior.log_prob(params[p.name]) for p in self.parameters)

    def theta_of(self, params: dict) -> jnp.ndarray:
        """Named parameters as vectors, each parameter flattened, in the declared order.

        Args:
            params: values by parameter name, each with the same leading batch shape ``(...)``.

        Returns:
            The parameter vectors, shape ``(..., num_theta)``.

        Raises:
            ValueError: a parameter is missing.
        """
        missing = [name for name in self.parameter_names if name not in params]
        _require(not missing, f"{self.name}: parameters {missing} are missing; expected {list(self.parameter_names)}")
        parts = []
        for p in self.parameters:
            value = jnp.asarray(params[p.name], dtype=jnp.float32)
            batch = value.shape[: value.ndim - len(p.shape)]
            parts.append(value.reshape(batch + (p.size,)))
        return jnp.concatenate(parts, axis=-1)

    def params_of(self, theta) -> dict[str, jnp.ndarray]:
        """The inverse of :meth:`theta_of`.

        Args:
            theta: parameter vectors, shape ``(..., num_theta)``.

        Returns:
            The values by parameter name, each shape ``(..., *parameter.shape)``.
        """
        theta = jnp.asarray(theta)
        params, start = {}, 0
        for p in self.parameters:
            block = theta[..., start : start + p.size]
            params[p.name] = block[..., 0] if not p.shape else block.reshape(theta.shape[:-1] + p.shape)
            start += p.size
        return params

    # -- data --------------------------------------------------------------------------
    def validate_data(self, x) -> jnp.ndarray:
        x = check_finite_array(x, self.name)
        if tuple(x.shape) != tuple(self.observation_shape):
            raise ValueError(
                f"{self.name}: an observation must have shape {tuple(self.observation_shape)} "
                f"(one simulated data set), got {tuple(x.shape)}"
            )
        return x

    def num_points_of(self, x) -> None:
        """None: an observation is one whole simulated data set.

        Args:
            x: the observation (unused).
        """
        return None

    # -- simulating --------------------------------------------------------------------
    def simulate(self, key, params: dict, num_points=None) -> jnp.ndarray:
        """One data set from one set of named parameters.

        Args:
            key: a JAX PRNG key (or an integer seed).
            params: one value of each parameter, by name.
            num_points: ignored (a simulator's data set has a fixed shape).

        Returns:
            The data set, shape :attr:`observation_shape`.
        """
        return self.simulate_one(as_key(key), self.theta_of(params))

    def simulate_batch(
        self, key, theta, *, chunk_size: int | None = None, progress_bar: bool = False, devices=None
    ) -> np.ndarray:
        """Data sets for many parameter vectors, in chunks; the results do not depend on
        ``chunk_size`` or ``devices``.

        Args:
            key: a JAX PRNG key (or an integer seed); simulation i uses its i-th split.
            theta: parameter vectors, shape ``(num_simulations, num_theta)``.
            chunk_size: simulations per compiled call (default: :func:`default_chunk_size`,
                or fewer so that every core of a CPU gets a chunk: :func:`concurrent_chunks`).
            progress_bar: whether to show a progress bar.
            devices: the devices each chunk is spread over (default: every local device of
                JAX's default backend, e.g. all GPUs; ``jax.devices("cpu")`` keeps it on the CPU).

        Returns:
            The data sets, shape ``(num_simulations, *observation_shape)``.

        Raises:
            ValueError: ``theta`` has the wrong shape, ``devices`` is empty, or ``chunk_size`` < 1.
        """
        return run_in_chunks(self, "simulate", key, theta, chunk_size, progress_bar, devices)

    def simulate_summaries(
        self, key, theta, *, chunk_size: int | None = None, progress_bar: bool = False, devices=None
    ) -> np.ndarray:
        """Summary statistics of fresh simulations; the data sets themselves are never
        kept, so any number fits in memory.

        Args:
            key: a JAX PRNG key (or an integer seed); simulation i uses its i-th split.
            theta: parameter vectors, shape ``(num_simulations, num_theta)``.
            chunk_size: simulations per compiled call (default: :func:`default_chunk_size`,
                or fewer so that every core of a CPU gets a chunk: :func:`concurrent_chunks`).
            progress_bar: whether to show a progress bar.
            devices: the devices each chunk is spread over (default: every local device of
                JAX's default backend, e.g. all GPUs; ``jax.devices("cpu")`` keeps it on the CPU).

        Returns:
            The summaries, shape ``(num_simulations, num_features)``.

        Raises:
            ValueError: ``theta`` has the wrong shape, ``devices`` is empty, or ``chunk_size`` < 1.
        """
        return run_in_chunks(self, "summaries", key, theta, chunk_size, progress_bar, devices)

    def replicate(self, key, draws: dict, num_points=None) -> np.ndarray:
        """Posterior predictive data sets, one per draw, by re-simulation.

        Args:
            key: a JAX PRNG key (or an integer seed).
            draws: parameter draws by name, each with a leading axis ``num_draws``.
            num_points: ignored.

        Returns:
            The data sets, shape ``(num_draws, *observation_shape)``.
        """
        return self.simulate_batch(key, self.theta_of(draws))


@functools.lru_cache(maxsize=32)
def _compiled(model: Simulator, what: str, mesh: Mesh):
    """The jitted batch function of ``model``; compiled once per model and chunk shape."""

    def simulate(keys, theta):
        return jax.vmap(model.simulate_one)(keys, theta)

    def summaries(keys, theta):
        return model.summarize(simulate(keys, theta))

    batch = NamedSharding(mesh, PartitionSpec("batch"))
    on_cpu = mesh.devices.flat[0].platform == "cpu"
    return jax.jit(
        simulate if what == "simulate" else summaries,
        in_shardings=(batch, batch),
        out_shardings=batch,
        compiler_options=_cpu_compiler_options() if on_cpu else None,
    )


@functools.cache
def _cpu_compiler_options() -> dict | None:
    """512-bit vectors where the CPU has AVX-512: XLA prefers 256 bits (some CPUs slow their
    clock for 512-bit work), but batched simulations are one long vector loop, measured 1.3x
    faster with 512 on an AMD EPYC (HH, batch 2,048; benchmarks/README.md)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            has_avx512 = " avx512f" in cpuinfo.read()
    except OSError:  # not Linux: keep XLA's default
        return None
    return {"xla_cpu_prefer_vector_width": 512} if has_avx512 else None


def default_chunk_size(model: Simulator, devices) -> int:
    """Simulations per compiled call on ``devices``. CPU: 1,024 (larger chunks measured no
    faster: the batch already fills the vector units). GPU: a GPU needs far more threads to
    be busy (HH on an H100: 3.5e8 steps/s in chunks of 1,024, 1.4e10 in chunks of 100,000),
    so up to 131,072 per device, as many as keep one chunk's output under 1 GiB."""
    if devices[0].platform == "cpu":
        return 1024
    output_bytes = 4 * math.prod(model.observation_shape)
    return len(devices) * int(min(131_072, max(1024, 2**30 // output_bytes)))


def concurrent_chunks(devices) -> int:
    """How many chunks run at once. On a CPU, one per core that no device of the mesh
    already uses: XLA runs the small per-step kernels of one computation on one core, so a
    chunk per core is what uses the machine (HH summaries on 2 cores: 1.9x the simulations
    per second of one chunk at a time on one core). One elsewhere: a GPU is kept busy by one chunk."""
    if devices[0].platform != "cpu":
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // len(devices))


def run_in_chunks(
    model: Simulator, what: str, key, theta, chunk_size: int | None, progress_bar: bool, devices=None
) -> np.ndarray:
    """``model``'s batched ``what`` of ``theta``, in chunks over ``devices``: what
    :meth:`Simulator.simulate_batch` and :meth:`Simulator.simulate_summaries` run, for a
    simulator whose batched function differs from the vmapped :meth:`Simulator.simulate_one`
    (a streamed one, say).

    Args:
        model: the simulator.
        what: ``"simulate"`` or ``"summaries"``.
        key: a JAX PRNG key (or an integer seed); simulation i uses its i-th split.
        theta: parameter vectors, shape ``(num_simulations, num_theta)``.
        chunk_size: simulations per compiled call, or None for the default.
        progress_bar: whether to show a progress bar.
        devices: the devices each chunk is spread over (default: every local device).

    Returns:
        The data sets, shape ``(num_simulations, *observation_shape)``, or the summaries,
        shape ``(num_simulations, num_features)``.

    Raises:
        ValueError: ``theta`` has the wrong shape, ``devices`` is empty, or ``chunk_size`` < 1.
    """
    theta = np.asarray(theta, dtype=np.float32)
    if theta.ndim != 2 or theta.shape[1] != model.num_theta:
        raise ValueError(
            f"{model.name}: theta must have shape (num_simulations, {model.num_theta}) "
            f"for the parameters {list(model.theta_names)}, got {theta.shape}"
        )
    devices = jax.local_devices() if devices is None else list(devices)
    if not devices:
        raise ValueError(f"{model.name}: devices is empty; pass None to use every local device")
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"{model.name}: chunk_size must be a positive number of simulations, got {chunk_size}")
    workers = concurrent_chunks(devices)
    if chunk_size is None:
        # A batch too small to give every worker a default chunk is split among them.
        chunk_size = min(default_chunk_size(model, devices), -(-len(theta) // workers))
    mesh = Mesh(np.array(devices), ("batch",))
    # Every chunk has the same shape (the last one padded) so the function compiles once,
    # and a multiple of the device count so each device gets an equal share.
    chunk = max(len(devices), -(-min(chunk_size, max(len(theta), 1)) // len(devices)) * len(devices))
    function = _compiled(model, what, mesh)
    # Keys by simulation index: the same simulation whatever the chunking, devices or order.
    all_keys = jax.random.split(as_key(key), len(theta))

    def run(start):
        block, keys = theta[start : start + chunk], all_keys[start : start + chunk]
        real = len(block)
        if real < chunk:
            block = np.concatenate([block, np.repeat(block[-1:], chunk - real, axis=0)])
            keys = jnp.concatenate([keys, jnp.repeat(keys[-1:], chunk - real, axis=0)])
        return np.asarray(function(keys, jnp.asarray(block)))[:real]

    # JAX's 64-bit mode is per thread (`with jax.enable_x64(True)` in the caller): the worker
    # threads enter the caller's, or they would retrace the function in 32 bits.
    x64 = jax.dtypes.canonicalize_dtype(jnp.float64) == jnp.float64

    def run_in_worker(start):
        with jax.enable_x64(x64):
            return run(start)

    starts = range(0, len(theta), chunk)
    if not starts:
        return np.zeros((0,) + tuple(model.observation_shape), np.float32)
    outputs = []
    with tqdm(total=len(theta), desc=f"simulating {model.name}", disable=not progress_bar, unit="sim") as bar:
        if (id(function), chunk) not in _compiled_shapes:
            # The first chunk alone: it compiles, and concurrent first calls would each compile.
            outputs.append(run(starts[0]))
            bar.update(len(outputs[0]))
            _compiled_shapes.add((id(function), chunk))
        pool = ThreadPoolExecutor(max(1, min(workers, len(starts) - len(outputs))))
        try:
            for output in pool.map(run_in_worker, starts[len(outputs) :]):
                outputs.append(output)
                bar.update(len(output))
        finally:
            # On an error or Ctrl-C the chunks not yet started are dropped, not run.
            pool.shutdown(wait=True, cancel_futures=True)
    return np.concatenate(outputs)


# (id of the compiled function, chunk size) of the calls that have compiled: the next ones can
# start at once. Ids, so that _compiled's cache alone decides what stays alive (a reused id
# only costs a compilation run twice at once).
_compiled_shapes: set = set()
