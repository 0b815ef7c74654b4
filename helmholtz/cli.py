"""The ``helmholtz`` command line: list the zoo, fit a model to a data file, run the demo."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def _parse_value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def _parse_options(pairs: list[str]) -> dict:
    options = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"helmholtz: options are NAME=VALUE, got {pair!r}")
        options[name.replace("-", "_")] = _parse_value(value)
    return options


def command_models(args) -> int:
    from helmholtz.inference import methods_for
    from helmholtz.models.zoo import ZOO

    width = max(map(len, ZOO))
    for entry in ZOO.values():
        methods = ", ".join(methods_for(entry.example()))
        options = f" (model options: {entry.options})" if entry.options else ""
        print(f"{entry.name:<{width}}  {entry.description}{options}  [fits: {methods}]")
    return 0


def command_fit(args) -> int:
    import helmholtz
    from helmholtz.models.zoo import ZOO
    from helmholtz.report import write_report

    if args.model not in ZOO:
        raise SystemExit(f"helmholtz: unknown model {args.model!r}; `helmholtz models` lists them: {', '.join(ZOO)}")
    model, data = ZOO[args.model].build(args.data, **_parse_options(args.model_option))
    fit = helmholtz.fit(model, data, method=args.method, key=args.key, **_parse_options(args.option))
    written = write_report(fit, args.out)
    print(fit.summary().to_string())
    print("\nwrote " + ", ".join(str(path) for path in written.values()))
    return 0


def command_demo(args) -> int:
    """Factor analysis on data simulated from known loadings, fit by NUTS."""
    import jax

    import helmholtz
    from helmholtz.report import write_report

    model = helmholtz.models.FactorAnalysis(obs_dim=8, latent_dim=2)
    truth = {name: value[0] for name, value in model.sample_prior(jax.random.PRNGKey(args.key), 1).items()}
    data = model.simulate(jax.random.PRNGKey(args.key + 1), truth, num_points=500)
    print("demo: factor analysis (8 observed, 2 latent) on 500 points simulated from known parameters")
    fit = helmholtz.fit(model, data, method="svi", guide="full-rank", key=args.key)
    written = write_report(fit, args.out)
    fitted = helmholtz.diagnostics.flatten_draws(jax.vmap(model.identifiable_parameters)(fit.sample(0, 1000)))[1].mean(0)
    true = helmholtz.diagnostics.flatten_draws({k: np.asarray(v)[None] for k, v in model.identifiable_parameters(truth).items()})[1][0]
    print(f"correlation of fitted and true identifiable parameters (G G^T, mean, noise): {np.corrcoef(fitted, true)[0, 1]:.4f}")
    print(f"svi: {fit.diagnostics['num_steps']} steps, final loss {fit.history['loss'][-100:].mean():.1f}")
    print("wrote " + ", ".join(str(path) for path in written.values()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="helmholtz", description="A probabilistic-programming model zoo on JAX.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("models", help="list the zoo's models and the back ends that fit each").set_defaults(run=command_models)

    fit = commands.add_parser("fit", help="fit a zoo model to a data file and write a report")
    fit.add_argument("model", help="a model name from `helmholtz models`")
    fit.add_argument("data", help="data file: .npy, .npz, .csv or .json")
    fit.add_argument("--method", required=True, help="back end: nuts, svi, ...")
    fit.add_argument("--out", required=True, type=Path, help="folder for the report")
    fit.add_argument("--key", type=int, default=0, help="random seed (default 0)")
    fit.add_argument("--model-option", action="append", default=[], metavar="NAME=VALUE", help="model option, e.g. latent_dim=3")
    fit.add_argument("--option", action="append", default=[], metavar="NAME=VALUE", help="back-end option, e.g. num_samples=2000")
    fit.set_defaults(run=command_fit)

    demo = commands.add_parser("demo", help="the main job on an embedded default")
    demo.add_argument("--out", type=Path, default=Path("demo-report"))
    demo.add_argument("--key", type=int, default=0)
    demo.set_defaults(run=command_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, TypeError, FileNotFoundError) as error:
        print(f"helmholtz: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
