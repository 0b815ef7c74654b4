"""The main job on all ten Allen Cell Types recordings: how well does the fitted
Hodgkin-Huxley model reproduce each cell?

For each recording of ``shared/reference/allen_cell_types/``: ``helmholtz.fit_recording``
(NPE, truncated rounds), then the spike count and resting potential of the recording
against those of simulations at the posterior mode (median of 100 simulations, which
differ by their intrinsic noise) and of the posterior predictive (median over 100 draws).
The goal of the issue: median relative spike-count error at the posterior mode under 25%.

    .venv/bin/python benchmarks/allen_cells.py --num-simulations 20000 --num-rounds 4
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import helmholtz as hz
from helmholtz.app.recording_fit import predictive_check
from helmholtz.data import allen_recordings, load_recording


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-simulations", type=int, default=20_000)
    parser.add_argument("--num-rounds", type=int, default=4)
    parser.add_argument("--cells", type=int, default=10, help="how many of the ten recordings")
    parser.add_argument(
        "--first", type=int, default=0, help="index of the first recording (to split the run over processes)"
    )
    parser.add_argument("--out", type=Path, default=Path("allen-cells"), help="folder for the fits and the table")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    header = (
        f"{'cell':<26} {'spikes':>6} {'at mode':>7} {'rel err':>7} {'pred median':>11} "
        f"{'rest mV':>8} {'at mode':>8} {'invalid':>7} {'minutes':>7}"
    )
    print(header, flush=True)
    for path in allen_recordings()[args.first : args.first + args.cells]:
        recording = load_recording(path)
        start = time.perf_counter()
        fit, _ = hz.fit_recording(
            recording, key=0, num_simulations=args.num_simulations, num_rounds=args.num_rounds, progress_bar=False
        )
        minutes = (time.perf_counter() - start) / 60
        fit.save(args.out / f"{recording.name}.hz")
        check = predictive_check(fit, num_draws=100)
        names = list(check["names"])
        spikes, rest = names.index("spike_count"), names.index("rest_mean")
        observed = check["observed"]
        at_mode = np.nanmedian(check["at_mode"], axis=0)
        predicted = np.nanmedian(check["predicted"], axis=0)
        error = abs(at_mode[spikes] - observed[spikes]) / max(observed[spikes], 1.0)
        row = {
            "cell": recording.name,
            "observed_spikes": float(observed[spikes]),
            "spikes_at_mode": float(at_mode[spikes]),
            "relative_error": float(error),
            "predicted_spikes_median": float(predicted[spikes]),
            "observed_rest": float(observed[rest]),
            "rest_at_mode": float(at_mode[rest]),
            "invalid_fraction": fit.diagnostics["invalid_fraction"],
            "minutes": minutes,
            "mode": check["mode"],
        }
        rows.append(row)
        print(
            f"{row['cell']:<26} {row['observed_spikes']:>6.0f} {row['spikes_at_mode']:>7.0f} {error:>7.0%} "
            f"{row['predicted_spikes_median']:>11.0f} "
            f"{row['observed_rest']:>8.1f} {row['rest_at_mode']:>8.1f} {row['invalid_fraction']:>7.1%} {minutes:>7.1f}",
            flush=True,
        )
        (args.out / "table.json").write_text(json.dumps(rows, indent=2))
    errors = np.asarray([row["relative_error"] for row in rows])
    print(f"median relative spike-count error at the posterior mode: {np.median(errors):.0%} (goal: under 25%)")
    return rows


if __name__ == "__main__":
    main()
