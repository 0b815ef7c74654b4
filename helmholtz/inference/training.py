"""The optimisation loop the gradient-based back ends share (svi, vae, wake-sleep, rws).

Steps run in compiled chunks of ``check_every`` (one ``lax.scan`` each), so Python is
visited once per chunk: for the progress bar, the finiteness check and early stopping.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from helmholtz.models.base import num_rows


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


def check_schedule(method: str, num_steps, check_every, patience) -> None:
    def positive_int(value):
        return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1

    if not (positive_int(num_steps) and positive_int(check_every)):
        raise ValueError(
            f"{method}: num_steps and check_every must be positive integers, got {num_steps!r}, {check_every!r}"
        )
    if not (isinstance(patience, (int, np.integer)) and patience >= 0):
        raise ValueError(
            f"{method}: patience must be an integer >= 0 (0 switches early stopping off), got {patience!r}"
        )


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
    advice: str = "lower learning_rate",
    validate: Callable | None = None,
):
    """Run ``carry, losses = run_chunk(carry)`` (``check_every`` steps, one loss each)
    until ``num_steps`` (rounded up to whole chunks) or a plateau.

    Without ``validate`` the plateau is that of the training loss and the last carry is
    returned. With it, ``validate(carry)`` (a held-out loss) is computed after every
    chunk, the plateau is that of the held-out loss, and the carry with the lowest
    held-out loss is returned: early stopping against overfitting.

    Returns the chosen carry, every step's loss, the number of steps taken and the
    held-out loss after each chunk (empty without ``validate``)."""
    plateau = Plateau(tolerance, patience)
    chunks, held_out, done = [], [], 0
    best, best_carry = np.inf, carry
    with tqdm(total=num_steps, desc=method, disable=not progress_bar, leave=False) as bar:
        while done < num_steps:
            carry, losses = run_chunk(carry)
            losses = np.asarray(losses)
            chunks.append(losses)
            done += check_every
            bar.update(check_every)
            if not np.all(np.isfinite(losses)):
                raise FloatingPointError(
                    f"{method}: the loss became {losses[~np.isfinite(losses)][0]} after {done} steps; {advice}"
                )
            monitored = losses.mean()
            if validate is not None:
                monitored = float(validate(carry))
                held_out.append(monitored)
                if monitored < best:
                    best, best_carry = monitored, carry
            bar.set_postfix(loss=f"{losses.mean():.4g}", **({"held_out": f"{monitored:.4g}"} if validate else {}))
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
    advice: str = "lower learning_rate",
    validate: Callable | None = None,
):
    """Run NumPyro's ``svi`` on ``x`` in compiled chunks; returns its final state (or,
    with ``validate(params)``, a held-out loss, the state where that was lowest), the loss
    of every step, the number of steps taken and the held-out losses.

    With ``batch_size`` below the number of points, steps go through the data in epochs:
    each epoch is a fresh random permutation cut into batches (the remainder is left for
    that epoch), and each step passes its batch's indices as the programs' second
    argument (the programs scale their terms by N / batch_size). One permutation per epoch
    rather than per step: a permutation is a sort, which costs more than a small step on
    a CPU."""
    num_points = num_rows(x)
    minibatch = batch_size is not None and batch_size < num_points
    steps_per_epoch = num_points // batch_size if minibatch else 1

    def next_batch(key, order, step):
        """The indices of this step's batch, drawing a new order at each epoch's start."""
        position = step % steps_per_epoch
        order = jax.lax.cond(position == 0, lambda: jax.random.permutation(key, num_points), lambda: order)
        return order, jax.lax.dynamic_slice_in_dim(order, position * batch_size, batch_size)

    key_init, key_batches = jax.random.split(key) if minibatch else (key, key)
    order = jnp.arange(num_points)
    first = (x, next_batch(key_batches, order, 0)[1]) if minibatch else (x,)
    state = svi.init(key_init, *first, init_params=init_params)

    @jax.jit
    def run_chunk(carry, x):
        def step(carry, _):
            state, key, order, count = carry
            if not minibatch:
                state, loss = svi.update(state, x)
                return (state, key, order, count + 1), loss
            key, key_order = jax.random.split(key)
            order, indices = next_batch(key_order, order, count)
            state, loss = svi.update(state, x, indices)
            return (state, key, order, count + 1), loss

        return jax.lax.scan(step, carry, None, length=check_every)

    # x stays an argument of the compiled chunk: closed over, it would be baked into the program.
    validate_carry = None if validate is None else (lambda carry: validate(svi.get_params(carry[0])))
    (state, *_), losses, done, held_out = train_in_chunks(
        method,
        lambda carry: run_chunk(carry, x),
        (state, key_batches, order, 0),
        num_steps=num_steps,
        check_every=check_every,
        patience=patience,
        tolerance=tolerance,
        progress_bar=progress_bar,
        advice=advice,
        validate=validate_carry,
    )
    return state, losses, done, held_out
