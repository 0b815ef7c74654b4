"""The optimisation loop the gradient-based back ends share (svi, vae, wake-sleep, rws),
and the training options they share (:class:`TrainingOptions`, declared and documented once).

Steps run in compiled chunks of ``check_every`` (one ``lax.scan`` each), so Python is
visited once per chunk: for the progress bar, the finiteness check and early stopping.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from helmholtz.inference.registry import unknown_options_message
from helmholtz.models.base import num_rows


def is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_real(value) -> bool:
    """A real number (a Python or NumPy scalar, or a 0-d array), not a bool or a string."""
    if isinstance(value, (bool, np.bool_, str, bytes)) or np.ndim(value) != 0 or not np.isrealobj(value):
        return False
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def check_positive_int(method: str, name: str, value, minimum: int = 1, why: str = "") -> int:
    """``value`` as an int, or a ValueError naming ``name``, the value and what is expected."""
    if not (is_int(value) and value >= minimum):
        expected = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{method}: {name} must be {expected}{why}, got {value!r}")
    return int(value)


def check_num_particles(method: str, num_particles, minimum: int = 1, why: str = "") -> int:
    """``num_particles`` as an int, or a ValueError unless it is an integer >= ``minimum``."""
    return check_positive_int(method, "num_particles", num_particles, minimum, why)


def _loaded_resume(resume):
    """``resume`` as a Fit: a Fit, or the path of a saved one (loaded); None stays None."""
    from helmholtz.inference.fit import Fit, load

    if resume is None or isinstance(resume, Fit):
        return resume
    if isinstance(resume, (str, os.PathLike)):
        if not os.path.isfile(resume):
            raise ValueError(f"resume must be a Fit or the path of a saved one; no file at {os.fspath(resume)!r}")
        return load(resume)
    raise ValueError(f"resume must be a Fit or the path of a saved one (hz.load), got {type(resume).__name__}")


@dataclasses.dataclass(frozen=True)
class TrainingOptions:
    """The training options every gradient-trained back end takes (``svi``, ``vae``,
    ``wake-sleep``, ``rws``), declared and documented once (the user guide's "Options").
    They are passed flat, as keyword options of :func:`helmholtz.fit`
    (``hz.fit(model, x, method="vae", num_steps=5000)``); each back end has its own
    defaults for ``num_steps`` and ``learning_rate`` and documents only its own options.

    Training runs in compiled chunks of ``check_every`` steps. After each chunk the mean
    loss of its steps (or a held-out loss, where the back end takes ``validation``) is
    compared with the best so far: training stops early when it has not improved by
    ``tolerance`` (relative) ``patience`` times in a row. A non-finite loss stops training
    with an error naming the step it happened at and what to change.

    Args:
        num_steps: the most optimisation steps, a positive integer (rounded up to a
            multiple of ``check_every``).
        learning_rate: Adam's step size, a finite number > 0, or an Optax schedule (not
            used with ``optimizer``).
        optimizer: any Optax ``GradientTransformation``, in place of Adam.
        check_every: steps per compiled chunk, between two checks of the loss.
        patience: checks in a row without improvement before stopping; 0 switches early
            stopping off.
        tolerance: the relative improvement on the best loss so far that counts, >= 0.
        resume: a previous Fit of the same back end and model (and the same guide or
            encoder settings), or the path of a saved one: training continues from its
            parameters (the optimizer's state, e.g. Adam's moments, starts afresh) and
            its loss history.
        progress_bar: show a progress bar (tqdm) of the steps.
    """

    num_steps: int = 10_000
    learning_rate: Any = 1e-3
    optimizer: optax.GradientTransformation | None = None
    check_every: int = 500
    patience: int = 5
    tolerance: float = 1e-5
    resume: Any = None
    progress_bar: bool = True

    def __post_init__(self):
        if not all(is_int(value) and value >= 1 for value in (self.num_steps, self.check_every)):
            raise ValueError(
                f"num_steps and check_every must be positive integers, got {self.num_steps!r}, {self.check_every!r}"
            )
        if not (is_int(self.patience) and self.patience >= 0):
            raise ValueError(f"patience must be an integer >= 0 (0 switches early stopping off), got {self.patience!r}")
        if not (is_real(self.tolerance) and 0 <= self.tolerance < math.inf):
            raise ValueError(f"tolerance must be a finite number >= 0, got {self.tolerance!r}")
        if self.optimizer is None:
            # An Optax schedule (a function of the step) is a learning rate too.
            rate = self.learning_rate
            if not (callable(rate) or (is_real(rate) and 0 < rate < math.inf)):
                raise ValueError(
                    f"learning_rate must be a finite number > 0 (or an Optax schedule), got {rate!r}"
                    + (": with 0 the parameters would never move" if is_real(rate) and rate == 0 else "")
                )
        elif not isinstance(self.optimizer, optax.GradientTransformation):
            raise ValueError(f"optimizer must be an Optax GradientTransformation, got {type(self.optimizer).__name__}")
        if not isinstance(self.progress_bar, (bool, np.bool_)):
            raise ValueError(f"progress_bar must be True or False, got {self.progress_bar!r}")
        object.__setattr__(self, "resume", _loaded_resume(self.resume))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The options' names."""
        return tuple(field.name for field in dataclasses.fields(cls))

    def replace(self, method: str, **changes) -> TrainingOptions:
        """These options with a user's changes, checked.

        Args:
            method: the back end's name, for the messages.
            **changes: option values by name.

        Returns:
            A new options object.

        Raises:
            ValueError: naming the back end and what is wrong (an unknown name, a value out
                of range).
        """
        unknown = set(changes) - set(self.names())
        if unknown:
            raise ValueError(unknown_options_message(method, unknown, self.names()))
        try:
            return dataclasses.replace(self, **changes)
        except ValueError as error:
            raise ValueError(f"{method}: {error}") from None

    def make_optimizer(self) -> optax.GradientTransformation:
        """``optimizer``, or Adam at ``learning_rate``."""
        return self.optimizer if self.optimizer is not None else optax.adam(self.learning_rate)

    def record(self) -> dict:
        """The options as a Fit records them (``fit.options``); ``learning_rate`` is None
        with a custom optimizer or a schedule."""
        custom = self.optimizer is not None or callable(self.learning_rate)
        return dict(
            num_steps=self.num_steps,
            learning_rate=None if custom else self.learning_rate,
            check_every=self.check_every,
            patience=self.patience,
            tolerance=self.tolerance,
        )

    def step_size_advice(self) -> str:
        """How to take smaller steps: with these options' learning rate, or the optimizer's."""
        if self.optimizer is not None:
            return "lower the step size of the optimizer passed as optimizer"
        if callable(self.learning_rate):
            return "lower the learning_rate schedule"
        return f"lower learning_rate (now {float(self.learning_rate):g})"


@dataclasses.dataclass(frozen=True)
class AmortisedOptions(TrainingOptions):
    """The training options of the amortised back ends (``vae``, ``wake-sleep``, ``rws``):
    those of :class:`TrainingOptions` and three more, declared once.

    Args:
        batch_size: data points per step, a positive integer: each epoch goes through a
            fresh random order of the points in batches of this size, and a batch's terms
            are scaled by N / batch_size. None (or N or more) uses every point each step.
        encoder_hidden: the widths of the encoder's hidden (tanh) layers.
        validation: held-out data points: early stopping then watches the negative
            10-particle importance-weighted bound on them after every chunk
            (``history["held_out"]``, nats per point), and the Fit keeps the parameters
            where it was lowest. Use it on small data sets, where a network overfits long
            before the training loss levels off.
    """

    batch_size: int | None = None
    encoder_hidden: tuple[int, ...] = (64, 64)
    validation: Any = None

    def __post_init__(self):
        super().__post_init__()
        if self.batch_size is not None and not (is_int(self.batch_size) and self.batch_size >= 1):
            raise ValueError(f"batch_size must be a positive integer or None (every point), got {self.batch_size!r}")
        try:
            widths = tuple(self.encoder_hidden)
        except TypeError:
            widths = ()
        if not (len(widths) >= 1 and all(is_int(width) and width >= 1 for width in widths)):
            raise ValueError(f"encoder_hidden must be positive integer layer widths, got {self.encoder_hidden!r}")
        object.__setattr__(self, "encoder_hidden", tuple(int(width) for width in widths))


# The amortised back ends' defaults (those of the class): num_steps 10,000, learning_rate 1e-3.
AMORTISED_TRAINING = AmortisedOptions()


def non_finite_advice(
    training: TrainingOptions, at_start: str, *, num_particles: int | None = None
) -> Callable[[int], str]:
    """The advice given with a non-finite loss at a step: ``at_start`` for the first step
    (the starting point itself is at fault), else smaller steps or more particles."""

    def advice(step: int) -> str:
        if step == 0:
            return at_start
        more = "" if num_particles is None else f" or raise num_particles (now {num_particles}) for steadier gradients"
        return f"the optimisation diverged: {training.step_size_advice()}{more}"

    return advice


class Plateau:
    """Stops when the mean loss of a chunk has not improved by ``tolerance`` (relative)
    on the best chunk so far for ``patience`` chunks in a row."""

    def __init__(self, tolerance: float, patience: int):
        self.tolerance, self.patience = tolerance, patience
        self.best, self.waited = np.inf, 0

    def reached(self, chunk_mean: float) -> bool:
        if not np.isfinite(self.best) or chunk_mean < self.best - self.tolerance * abs(self.best):
            self.best, self.waited = chunk_mean, 0
        else:
            self.waited += 1
        return self.waited >= self.patience


def train_in_chunks(
    method: str,
    run_chunk: Callable,
    carry,
    *,
    num_steps: int,
    check_every: int,
    patience: int,
    tolerance: float,
    progress_bar: bool,
    advice: str | Callable[[int], str] = "lower learning_rate",
    validate: Callable | None = None,
    first_step: int = 0,
):
    """Run ``carry, losses = run_chunk(carry)`` (``check_every`` steps, one loss each)
    until ``num_steps`` (rounded up to whole chunks) or a plateau.

    Without ``validate`` the plateau is that of the training loss and the last carry is
    returned. With it, ``validate(carry)`` (a held-out loss) is computed after every
    chunk, the plateau is that of the held-out loss, and the carry with the lowest
    held-out loss is returned: early stopping against overfitting.

    A non-finite loss raises a FloatingPointError naming the first step whose loss was
    not finite (counted from 0, or from ``first_step`` for a resumed fit) and ``advice``
    (or ``advice(step)``, with the step counted in this run): what to change.

    Returns the chosen carry, every step's loss, the number of steps taken and the
    held-out loss after each chunk (empty without ``validate``)."""
    plateau = Plateau(tolerance, patience)
    chunks, held_out, done = [], [], 0
    best, best_carry = np.inf, carry
    with tqdm(total=num_steps, desc=method, disable=not progress_bar, leave=False) as bar:
        while done < num_steps:
            carry, losses = run_chunk(carry)
            losses = np.asarray(losses)
            mean = losses.mean()
            if not np.isfinite(mean):
                first = int(np.flatnonzero(~np.isfinite(losses))[0])
                step = done + first
                what = advice(step) if callable(advice) else advice
                which = " (the first)" if step == 0 else ""
                raise FloatingPointError(
                    f"{method}: the loss was {losses[first]} at step {first_step + step}{which}; {what}"
                )
            chunks.append(losses)
            done += check_every
            bar.update(check_every)
            monitored = mean
            if validate is not None:
                monitored = float(validate(carry))
                held_out.append(monitored)
                if monitored < best:
                    best, best_carry = monitored, carry
            if progress_bar:
                bar.set_postfix(loss=f"{mean:.4g}", **({"held_out": f"{monitored:.4g}"} if validate else {}))
            if patience and plateau.reached(float(monitored)):
                break
    return (carry if validate is None else best_carry), np.concatenate(chunks), done, np.asarray(held_out)


def optimise(
    method: str,
    svi,
    x,
    key,
    *,
    batch_size: int | None = None,
    init_params: dict | None = None,
    num_steps: int,
    check_every: int,
    patience: int,
    tolerance: float,
    progress_bar: bool,
    advice: str | Callable[[int], str] = "lower learning_rate",
    validate: Callable | None = None,
    average: bool = False,
    first_step: int = 0,
):
    """Run NumPyro's ``svi`` on ``x`` in compiled chunks.

    With ``batch_size`` below the number of points, steps go through the data in epochs:
    each epoch is a fresh random permutation cut into batches (the remainder is left for
    that epoch), and each step passes its batch's indices as the programs' second
    argument (the programs scale their terms by N / batch_size). One permutation per epoch
    rather than per step: a permutation is a sort, which costs more than a small step on
    a CPU. Without minibatches a step is ``svi.update(state, x)`` and nothing more: the
    chunk carries the SVI state alone, as NumPyro's own ``SVI.run`` does.

    With ``average`` (without minibatches or ``validate``), when training stops on a
    plateau the parameters returned are the average of the iterates since the best chunk
    (in unconstrained space): at a constant step size the iterates jitter about the
    optimum, and their average (Polyak-Ruppert) lies closer to it than the last one.

    Returns:
        The fitted parameters (constrained; with ``validate(params)``, a held-out loss,
        those where it was lowest), the loss of every step, the number of steps taken and
        the held-out losses.
    """
    num_points = num_rows(x)
    minibatch = batch_size is not None and batch_size < num_points
    schedule = dict(
        num_steps=num_steps,
        check_every=check_every,
        patience=patience,
        tolerance=tolerance,
        progress_bar=progress_bar,
        advice=advice,
        first_step=first_step,
    )
    # x stays an argument of the compiled chunk: closed over, it would be baked into the program.
    if not minibatch:
        state = svi.init(key, x, init_params=init_params)
        if average and patience and validate is None:
            return _optimise_averaged(svi, state, x, method, schedule)

        @jax.jit
        def run_whole(state, x):
            return jax.lax.scan(lambda state, _: svi.update(state, x), state, None, length=check_every)

        validate_state = None if validate is None else (lambda state: validate(svi.get_params(state)))
        state, losses, done, held_out = train_in_chunks(
            method, lambda state: run_whole(state, x), state, validate=validate_state, **schedule
        )
        return svi.get_params(state), losses, done, held_out

    steps_per_epoch = num_points // batch_size

    def next_batch(key, order, step):
        """The indices of this step's batch, drawing a new order at each epoch's start."""
        position = step % steps_per_epoch
        order = jax.lax.cond(position == 0, lambda: jax.random.permutation(key, num_points), lambda: order)
        return order, jax.lax.dynamic_slice_in_dim(order, position * batch_size, batch_size)

    key_init, key_batches = jax.random.split(key)
    order = jnp.arange(num_points)
    state = svi.init(key_init, x, next_batch(key_batches, order, 0)[1], init_params=init_params)

    @jax.jit
    def run_chunk(carry, x):
        def step(carry, _):
            state, key, order, count = carry
            key, key_order = jax.random.split(key)
            order, indices = next_batch(key_order, order, count)
            state, loss = svi.update(state, x, indices)
            return (state, key, order, count + 1), loss

        return jax.lax.scan(step, carry, None, length=check_every)

    validate_carry = None if validate is None else (lambda carry: validate(svi.get_params(carry[0])))
    (state, *_), losses, done, held_out = train_in_chunks(
        method, lambda carry: run_chunk(carry, x), (state, key_batches, order, 0), validate=validate_carry, **schedule
    )
    return svi.get_params(state), losses, done, held_out


def _optimise_averaged(svi, state, x, method: str, schedule: dict):
    """:func:`optimise` with ``average``: each chunk also sums its iterates."""

    def unconstrained(state):
        return svi.optim.get_params(state.optim_state)

    check_every = schedule["check_every"]

    @jax.jit
    def run_averaging(state, x):
        def step(carry, _):
            state, total = carry
            state, loss = svi.update(state, x)
            return (state, jax.tree.map(jnp.add, total, unconstrained(state))), loss

        zeros = jax.tree.map(jnp.zeros_like, unconstrained(state))
        (state, total), losses = jax.lax.scan(step, (state, zeros), None, length=check_every)
        return state, jax.tree.map(lambda sum_: sum_ / check_every, total), losses

    # The mean iterate of each of the last patience + 1 chunks: on a plateau, the best and those after it.
    means = collections.deque(maxlen=schedule["patience"] + 1)

    def run_chunk(state):
        state, mean, losses = run_averaging(state, x)
        means.append(mean)
        return state, losses

    state, losses, done, held_out = train_in_chunks(method, run_chunk, state, **schedule)
    if done >= schedule["num_steps"]:
        return svi.get_params(state), losses, done, held_out
    average = jax.tree.map(lambda *chunk_means: sum(chunk_means) / len(chunk_means), *means)
    return svi.constrain_fn(average), losses, done, held_out
