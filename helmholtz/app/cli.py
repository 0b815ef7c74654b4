"""The ``helmholtz`` command line: list the zoo, fit a model to a file, run the demo, open the gallery."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


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
    from helmholtz.app.zoo import ZOO
    from helmholtz.inference import methods_for

    width = max(map(len, ZOO))
    for entry in ZOO.values():
        methods = ", ".join(methods_for(entry.example()))
        options = f" (model options: {entry.options})" if entry.options else ""
        print(f"{entry.name:<{width}}  {entry.description}{options}  [fits: {methods}]")
    return 0


def command_fit(args) -> int:
    import pandas as pd

    import helmholtz
    from helmholtz.app.report import REPORT_FILES, claim_report_folder, write_report
    from helmholtz.app.zoo import ZOO

    if args.model not in ZOO:
        raise SystemExit(f"helmholtz: unknown model {args.model!r}; `helmholtz models` lists them: {', '.join(ZOO)}")
    claim_report_folder(args.out, REPORT_FILES)  # before the fit: never overwrite what a report did not write
    model, data = ZOO[args.model].build(args.data, **_parse_options(args.model_option))
    fit = helmholtz.fit(model, data, method=args.method, key=args.key, **_parse_options(args.option))
    written = write_report(fit, args.out)
    print(pd.read_csv(written["summary"], index_col=0).to_string())
    print("\nwrote " + ", ".join(str(path) for path in written.values()))
    return 0


def _report_recording_fit(fit, written, what: str) -> None:
    import json

    summary = json.loads(written["summary"].read_text())
    print(f"fitted {what}")
    if "reachability" in summary:  # what the model cannot produce, before the posterior is read
        print(summary["reachability"]["sentence"])
    print(f"simulations per round: {summary['simulations']}, invalid (excluded): {summary['invalid_simulations']}")
    if "seconds_simulating" in summary:
        simulating, training = sum(summary["seconds_simulating"]), sum(summary["seconds_training"])
        print(f"time: {simulating:.0f} s simulating, {training:.0f} s training the estimator")
    print(
        f"spike count: recorded {summary['observed_spike_count']:.0f}, at the posterior mode {summary['spike_count_at_mode']:.0f}"
    )
    print(
        f"resting potential: recorded {summary['observed_rest_mean']:.1f} mV, at the posterior mode {summary['rest_mean_at_mode']:.1f} mV"
    )
    print("posterior mode: " + ", ".join(f"{name}={value:.3g}" for name, value in summary["posterior_mode"].items()))
    print("\nwrote " + ", ".join(str(path) for path in written.values()))


def command_fit_recording(args) -> int:
    """Fit the cortical Hodgkin-Huxley model to a recording file by NPE."""
    from helmholtz.app.recording_fit import fit_recording
    from helmholtz.data.recordings import load_recording

    recording = load_recording(args.path, sweep=args.sweep)
    fit, written = fit_recording(
        recording,
        out=args.out,
        key=args.key,
        num_simulations=args.num_simulations,
        num_rounds=args.num_rounds,
        simulation_bank=args.simulation_bank,
    )
    _report_recording_fit(fit, written, f"{recording.name} ({recording.source})")
    return 0


def command_demo(args) -> int:
    """The main job on the default recording: the first Allen cell, else a simulated one."""
    from helmholtz.app.recording_fit import default_recording, fit_recording

    recording, what = default_recording()
    print(f"demo: fitting the cortical Hodgkin-Huxley model to {what} by NPE")
    fit, written = fit_recording(
        recording, out=args.out, key=args.key, num_simulations=args.num_simulations, num_rounds=args.num_rounds
    )
    _report_recording_fit(fit, written, what)
    return 0


def command_gallery(args) -> int:
    """Open the gallery site, building it first if it is missing (or if asked to)."""
    import webbrowser

    from helmholtz.app import gallery

    index = gallery.output_dir(args.quick) / "index.html"
    if args.rebuild or not index.is_file():
        mode = "quick" if args.quick else "full (every example at full size: long)"
        print(f"building the {mode} gallery into {index.parent}", flush=True)
        if gallery.build(quick=args.quick).wait() != 0:
            print("helmholtz: error: the gallery build failed; its log is above", file=sys.stderr)
            return 1
    print(f"gallery: {index}")
    if args.serve:
        with gallery.server(index.parent, args.port) as server:
            url = f"http://localhost:{server.server_port}/index.html"
            print(f"serving at {url} (Ctrl-C stops)", flush=True)
            if not args.no_open:
                webbrowser.open(url)
            try:
                server.serve_forever()
            except KeyboardInterrupt:
                pass
    elif not args.no_open:
        webbrowser.open(index.as_uri())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="helmholtz", description="A probabilistic-programming model zoo on JAX.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("models", help="list the zoo's models and the back ends that fit each").set_defaults(
        run=command_models
    )

    fit = commands.add_parser("fit", help="fit a zoo model to a data file and write a report")
    fit.add_argument("model", help="a model name from `helmholtz models`")
    fit.add_argument("data", help="data file: .npy, .npz, .csv or .json")
    fit.add_argument("--method", required=True, help="back end: nuts, svi, ...")
    fit.add_argument("--out", required=True, type=Path, help="folder for the report")
    fit.add_argument("--key", type=int, default=0, help="random seed (default 0)")
    fit.add_argument(
        "--model-option", action="append", default=[], metavar="NAME=VALUE", help="model option, e.g. latent_dim=3"
    )
    fit.add_argument(
        "--option", action="append", default=[], metavar="NAME=VALUE", help="back-end option, e.g. num_samples=2000"
    )
    fit.set_defaults(run=command_fit)

    recording = commands.add_parser("fit-recording", help="fit the cortical Hodgkin-Huxley model to a recording (NPE)")
    recording.add_argument("path", help="recording: .npz (Allen excerpt), .nwb, .abf or .csv")
    recording.add_argument("--out", type=Path, default=Path("recording-report"), help="folder for the report")
    recording.add_argument("--sweep", type=int, default=None, help="sweep number, for files with several")
    recording.add_argument(
        "--simulation-bank", type=Path, default=None, help="folder keeping simulations, so a rerun resumes"
    )
    demo = commands.add_parser("demo", help="the main job: fit HH to the default recording")
    demo.add_argument("--out", type=Path, default=Path("demo-report"))
    for command in (recording, demo):
        command.add_argument("--key", type=int, default=0, help="random seed (default 0)")
        command.add_argument(
            "--num-simulations", type=int, default=20_000, help="simulations over all rounds (default 20,000)"
        )
        command.add_argument("--num-rounds", type=int, default=4, help="NPE rounds, truncated proposals (default 4)")
    recording.set_defaults(run=command_fit_recording)
    demo.set_defaults(run=command_demo)

    site = commands.add_parser("gallery", help="open the example gallery and documentation, building it if missing")
    site.add_argument(
        "--quick", action="store_true", help="small sizes, warnings as errors (docs/_build/quick; what CI builds)"
    )
    site.add_argument("--rebuild", action="store_true", help="build even if the site exists")
    site.add_argument(
        "--serve", action="store_true", help="serve it over HTTP on localhost instead of opening the file"
    )
    site.add_argument("--port", type=int, default=8000, help="port for --serve (default 8000)")
    site.add_argument("--no-open", action="store_true", help="do not open a web browser")
    site.set_defaults(run=command_gallery)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, TypeError, OSError) as error:  # bad input, or a file that cannot be read or written
        print(f"helmholtz: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
