"""The command line: the zoo listing, and a fit that writes a report ArviZ reads back."""

import arviz as az
import numpy as np
import pytest

import helmholtz as hz
from helmholtz.app.cli import main
from helmholtz.app.zoo import ZOO


def test_models_lists_every_zoo_entry_with_its_back_ends(capsys):
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(ZOO)
    # Models with network weights (point-estimated params) are for the amortised back
    # ends and svi; nuts cannot sample them.
    with_networks = {"nonlinear-lvm", "hierarchical-lvm", "lfads"}
    for (name, entry), line in zip(ZOO.items(), lines):
        if not entry.example().has_likelihood:
            expected = "fits: npe, nle, nre"
        else:
            expected = "fits: svi, vae, wake-sleep, rws" if name in with_networks else "fits: nuts, svi"
        assert line.startswith(name) and expected in line


def test_fit_writes_a_readable_report(tmp_path):
    model = hz.models.FactorAnalysis(3, 1)
    x = np.asarray(model.simulate(1, {k: v[0] for k, v in model.sample_prior(0, 1).items()}, num_points=100))
    data = tmp_path / "data.csv"
    np.savetxt(data, x, delimiter=",", header="a,b,c", comments="")
    out = tmp_path / "report"
    code = main(
        [
            "fit",
            "factor-analysis",
            str(data),
            "--method",
            "svi",
            "--out",
            str(out),
            "--model-option",
            "latent_dim=1",
            "--option",
            "num_steps=500",
            "--option",
            "progress_bar=false",
        ]
    )
    assert code == 0
    idata = az.from_netcdf(out / "posterior.nc")
    assert idata.posterior["loadings"].shape[-2:] == (3, 1)
    np.testing.assert_allclose(idata.observed_data["x"].values, x)
    assert (out / "summary.csv").read_text().startswith(",mean,sd")
    assert (out / "trace.png").stat().st_size > 0 and (out / "loss.png").stat().st_size > 0
    assert hz.load(out / "fit.hz").method == "svi"


def test_fit_reports_bad_input_clearly(tmp_path, capsys):
    data = tmp_path / "data.csv"
    data.write_text("1,2\n3,nan\n")
    assert main(["fit", "factor-analysis", str(data), "--method", "svi", "--out", str(tmp_path / "r")]) == 2
    assert "NaN" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="unknown model 'pca'"):
        main(["fit", "pca", str(data), "--method", "svi", "--out", str(tmp_path / "r")])


def test_the_report_summarises_what_the_data_identify(tmp_path):
    """Factor analysis identifies its loadings only up to a rotation (here a sign), so the
    report's table and trace show the loadings' covariance G G^T instead (the model's
    ``identifiable_parameters``), and the data are plotted against the predictive."""
    model = hz.models.FactorAnalysis(3, 1)
    x = np.asarray(model.simulate(1, {k: v[0] for k, v in model.sample_prior(0, 1).items()}, num_points=100))
    data = tmp_path / "data.csv"
    np.savetxt(data, x, delimiter=",")
    out = tmp_path / "report"
    assert (
        main(
            [
                "fit",
                "factor-analysis",
                str(data),
                "--method",
                "svi",
                "--out",
                str(out),
                "--model-option",
                "latent_dim=1",
                "--option",
                "num_steps=500",
                "--option",
                "progress_bar=false",
            ]
        )
        == 0
    )
    rows = [line.split(",")[0] for line in (out / "summary.csv").read_text().splitlines()[1:]]
    assert any(row.startswith("loadings_covariance[") for row in rows)
    assert not any(row.startswith("loadings[") for row in rows)
    assert (out / "predictive.png").stat().st_size > 0


# -- nothing lost, and errors as one line (issue #20, items 7 and 8) -------------------------


def _factor_data(tmp_path):
    model = hz.models.FactorAnalysis(3, 1)
    x = np.asarray(model.simulate(1, {k: v[0] for k, v in model.sample_prior(0, 1).items()}, num_points=50))
    data = tmp_path / "data.csv"
    np.savetxt(data, x, delimiter=",")
    return data


def _legacy(name):
    from pathlib import Path

    return Path(__file__).parent / "data" / "legacy_fits" / name


def test_fit_never_overwrites_a_file_the_report_did_not_write(tmp_path, capsys):
    out = tmp_path / "results"
    out.mkdir()
    (out / "summary.csv").write_text("subject,score\n1,0.5\n")  # the user's own data
    code = main(
        [
            "fit",
            "factor-analysis",
            str(_factor_data(tmp_path)),
            "--method",
            "svi",
            "--out",
            str(out),
            "--model-option",
            "latent_dim=1",
            "--option",
            "num_steps=50",
            "--option",
            "progress_bar=false",
        ]
    )
    assert code == 2
    error = capsys.readouterr().err
    assert "summary.csv, which no helmholtz report wrote" in error and "refusing to overwrite" in error
    assert len(error.strip().splitlines()) == 1
    assert (out / "summary.csv").read_text() == "subject,score\n1,0.5\n"


def test_a_report_may_rewrite_what_a_report_wrote(tmp_path):
    from helmholtz.app.report import REPORT_MARKER, write_report

    fit = hz.load(_legacy("svi.hz"))
    out = tmp_path / "report"
    first = write_report(fit, out)
    second = write_report(fit, out)
    assert first == second and all(path.is_file() for path in second.values())
    assert "summary.csv" in (out / REPORT_MARKER).read_text()
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


def test_a_malformed_first_row_is_a_one_line_error_not_a_lost_row(tmp_path, capsys):
    data = _factor_data(tmp_path)
    data.write_text("\ufeff" + "2.O,1,1\n" + data.read_text(), encoding="utf-8")
    code = main(
        [
            "fit",
            "factor-analysis",
            str(data),
            "--method",
            "svi",
            "--out",
            str(tmp_path / "r"),
            "--option",
            "num_steps=50",
            "--option",
            "progress_bar=false",
        ]
    )
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        f"helmholtz: error: {data} does not hold a numeric array: line 1 holds '2.O', not a number ('2.O,1,1')"
    )


def test_a_bank_path_that_is_a_file_is_a_one_line_error(tmp_path, capsys):
    data = tmp_path / "x.csv"
    data.write_text("0.3,-0.2\n")
    bank = tmp_path / "bank"
    bank.write_text("a file")
    code = main(
        [
            "fit",
            "gaussian-linear",
            str(data),
            "--method",
            "npe",
            "--out",
            str(tmp_path / "r"),
            "--model-option",
            "dim=2",
            "--option",
            f"simulation_bank={bank}",
            "--option",
            "num_simulations=100",
            "--option",
            "progress_bar=false",
        ]
    )
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        f"helmholtz: error: simulation_bank {bank} is a file, not a folder; give a folder (it is made if missing)"
    )
