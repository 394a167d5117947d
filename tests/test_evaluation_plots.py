"""Smoke tests of figures, tables and the ``jaxmarl plot`` subcommand (Agg backend)."""

import argparse
import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from jaxmarl_envs.algorithms.evaluation import JsonLogger, load_results, plot_cli, plots, tables
from jaxmarl_envs.algorithms.evaluation import statistics as st
from jaxmarl_envs.algorithms.evaluation.statistics import Interval

FIXTURE = Path(__file__).parent / "data" / "marl_eval_results.json"
#: The report's tables (each as CSV and LaTeX).
TABLES = ("aggregate_scores", "probability_of_improvement", "per_task_scores", "per_task_iqm")


def _is_png(path):
    return path.stat().st_size > 1000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _is_pdf(path):
    return path.stat().st_size > 1000 and path.read_bytes()[:5] == b"%PDF-"


@pytest.fixture(scope="module")
def scores():
    rng = np.random.default_rng(0)
    return {
        "ippo": rng.uniform(0.2, 0.6, size=(5, 3)),
        "mappo_v2": rng.uniform(0.4, 0.9, size=(5, 3)),
    }


def test_plots_write_png_and_pdf(tmp_path, scores):
    results = st.aggregate_metrics(scores, reps=500)
    written = plots.plot_aggregate_intervals(results, [tmp_path / "agg.png", tmp_path / "agg.pdf"])
    assert _is_png(written[0]) and _is_pdf(written[1])
    taus, profiles = st.performance_profile(scores, reps=200)
    (png,) = plots.plot_performance_profiles(taus, profiles, tmp_path / "profile.png")
    assert _is_png(png)
    pairs = st.probability_of_improvement_pairs(scores, reps=200)
    (pdf,) = plots.plot_probability_of_improvement(pairs, tmp_path / "poi.pdf")
    assert _is_pdf(pdf)
    values = {name: np.stack([s * 0.5, s], axis=-1) for name, s in scores.items()}
    curves = st.sample_efficiency_curves(values, reps=200)
    steps = {name: np.array([1e5, 2e5]) for name in scores}
    (png,) = plots.plot_curves(steps, curves, tmp_path / "curves" / "eff.png", "IQM")
    assert _is_png(png)
    # A single run has no interval: the curve is drawn without a band.
    single = {"ippo": st.single_task_curve(np.array([[1.0, 2.0]]))}
    (png,) = plots.plot_curves({"ippo": np.array([1.0, 2.0])}, single, tmp_path / "one.png", "r")
    assert _is_png(png)


def test_tables(tmp_path, scores):
    results = st.aggregate_metrics(scores, reps=500)
    csv_path, tex_path = tables.write_aggregate_tables(
        results, tmp_path / "agg.csv", tmp_path / "agg.tex", caption="IQM & co_"
    )
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    assert [row["algorithm"] for row in rows] == ["ippo", "mappo_v2"]
    for row in rows:
        expected = results[row["algorithm"]]["iqm"]
        assert float(row["iqm"]) == expected.point
        assert float(row["iqm_lower"]) == expected.lower
        assert float(row["iqm_upper"]) == expected.upper
    tex = tex_path.read_text()
    assert r"\begin{tabular}{lcccc}" in tex and r"\bottomrule" in tex
    assert r"mappo\_v2" in tex and r"IQM \& co\_" in tex
    point = results["ippo"]["mean"]
    assert f"{point.point:.3f} [{point.lower:.3f}, {point.upper:.3f}]" in tex
    md_rows = {"ippo|x": {"lbf": Interval(0.9981, 0.99, 1.0), "rware": Interval(41.19, 39.5, 43)}}
    md_rows["mappo"] = {"lbf": Interval(0.5, math.nan, math.nan), "rware": Interval(7, 6, 8)}
    md = tables.write_interval_markdown(
        md_rows, tmp_path / "t.md", precision={"lbf": 3, "rware": 1}, caption="IQM.", missing="-"
    )
    assert md.read_text().splitlines() == [
        "| algorithm | lbf | rware |",
        "|---|---:|---:|",
        "| ippo\\|x | 0.998 [0.990, 1.000] | 41.2 [39.5, 43.0] |",
        "| mappo | 0.500 [-] | 7.0 [6.0, 8.0] |",
        "",
        "IQM.",
    ]
    # Three significant digits of the largest |value|, 0 to 3 decimals.
    cases = ([41.19], [0.998, -3.0], [1234.5], [0.01], [])
    assert [tables.auto_decimals(v) for v in cases] == [1, 2, 0, 3, 3]
    for write in (
        tables.write_interval_csv,
        tables.write_interval_latex,
        tables.write_interval_markdown,
    ):
        with pytest.raises(ValueError, match="empty table"):
            write({}, tmp_path / "empty")
    pairs = {("a_1", "b"): Interval(0.75, 0.5, 0.9)}
    poi_csv, poi_tex = tables.write_poi_tables(pairs, tmp_path / "p.csv", tmp_path / "p.tex")
    assert poi_csv.read_text().splitlines()[1] == "a_1,b,0.75,0.5,0.9"
    assert r"P(a\_1 $>$ b) & 0.750 [0.500, 0.900] \\" in poi_tex.read_text()


def test_a_failed_write_keeps_the_previous_table_and_figure(tmp_path, scores, monkeypatch):
    """Tables and figures are written to a temporary file and renamed over the old one: a write
    that fails half-way (a row missing a column; the figure's encoder raising after some bytes)
    leaves the previous file whole and no temporary beside it."""
    good = {"ippo": {"iqm": Interval(0.5, 0.4, 0.6)}, "mappo": {"iqm": Interval(0.7, 0.6, 0.8)}}
    bad = {"ippo": good["ippo"], "mappo": {}}  # the second row lacks the column
    for write, name in (
        (tables.write_interval_csv, "t.csv"),
        (tables.write_interval_latex, "t.tex"),
        (tables.write_interval_markdown, "t.md"),
    ):
        path = write(good, tmp_path / name)
        before = path.read_bytes()
        with pytest.raises(KeyError):
            write(bad, path)
        assert path.read_bytes() == before
    results = st.aggregate_metrics(scores, reps=200)
    (png,) = plots.plot_aggregate_intervals(results, tmp_path / "agg.png")
    before = png.read_bytes()
    from matplotlib.figure import Figure

    def broken(self, fname, **kwargs):
        fname.write(b"\x89PNG half a figure")
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken)
    with pytest.raises(OSError, match="disk full"):
        plots.plot_aggregate_intervals(results, png)
    assert png.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agg.png", "t.csv", "t.md", "t.tex"]


def _parse(argv):
    parser = argparse.ArgumentParser(prog="jaxmarl")
    subparsers = parser.add_subparsers(dest="command", required=True)
    plot_cli.add_subparser(subparsers)
    return parser.parse_args(argv)


def test_cli_produces_every_file(tmp_path, capsys):
    # Two result files written by our logger, merged by the command.
    rng = np.random.default_rng(1)
    files = []
    for part, algorithms in enumerate([("ippo",), ("mappo", "iql")]):
        path = tmp_path / f"part{part}.json"
        for task in ("tiny", "small"):
            for algorithm in algorithms:
                for seed in range(3):
                    logger = JsonLogger(path, "rware", task, algorithm, seed=seed)
                    for k in range(3):
                        logger.log_step(1000 * (k + 1), {"return": rng.normal(k, 1.0, size=4)})
                    logger.log_absolute({"return": rng.normal(3.0, 1.0, size=20)})
        files.append(str(path))
    out = tmp_path / "figures"
    args = _parse(["plot", *files, "--metric", "return", "--out", str(out), "--reps", "300"])
    assert args.func is plot_cli.run
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert str(out.resolve()) in printed
    for name in (
        "aggregate_scores",
        "performance_profile",
        "probability_of_improvement",
        "sample_efficiency",
        "single_task/rware__tiny",
        "single_task/rware__small",
        "per_task_curves",
    ):
        assert _is_png(out / f"{name}.png"), name
        assert _is_pdf(out / f"{name}.pdf"), name
    for name in (
        "aggregate_scores",
        "probability_of_improvement",
        "per_task_scores",
        "per_task_iqm",
    ):
        assert (out / f"{name}.csv").stat().st_size > 0
        assert r"\begin{tabular}" in (out / f"{name}.tex").read_text()
    summary = json.loads((out / "statistics.json").read_text())
    assert summary["settings"]["aggregate_reps"] == 300
    assert sorted(summary["aggregate"]) == ["ippo", "iql", "mappo"]
    assert len(summary["probability_of_improvement"]) == 3
    assert summary["tasks"] == ["rware/small", "rware/tiny"]
    for interval in summary["aggregate"]["ippo"].values():
        assert interval["lower"] <= interval["point"] <= interval["upper"]
    # Same seed, same numbers.
    again = _parse(
        ["plot", *files, "--metric", "return", "--out", str(tmp_path / "again"), "--formats", "png"]
    )
    again.reps = 300
    assert plot_cli.run(again) == 0
    assert (
        json.loads((tmp_path / "again" / "statistics.json").read_text())["aggregate"]
        == (summary["aggregate"])
    )


def test_cli_with_reference_scores_and_errors(tmp_path, capsys):
    refs = tmp_path / "refs.json"
    refs.write_text(
        json.dumps(
            {"lbf": {"8x8-2p-2f": {"min": 0, "max": 5}, "10x10-3p-3f": {"min": 0, "max": 60}}}
        )
    )
    out = tmp_path / "out"
    argv = ["plot", str(FIXTURE), "--metric", "return", "--out", str(out), "--reps", "200"]
    argv += ["--formats", "png"]
    assert plot_cli.run(_parse([*argv, "--normalise", str(refs), "--method", "bca"])) == 0
    summary = json.loads((out / "statistics.json").read_text())
    # Normalised ippo scores: 0.4 on both runs of 8x8 and 0.5 on both of 10x10 -> mean 0.45.
    assert abs(summary["aggregate"]["ippo"]["mean"]["point"] - 0.45) < 1e-12
    assert summary["normalisation_ranges"]["lbf/10x10-3p-3f"] == [0.0, 60.0]
    # Per-task table in raw units: mappo on 10x10 has run means 55 and 40.
    assert abs(summary["per_task"]["lbf/10x10-3p-3f"]["mappo"]["point"] - 47.5) < 1e-12
    # Unnormalised returns are not on [0, 1]: the optimality gap is left out, with a note.
    assert plot_cli.run(_parse([*argv, "--normalise", "none"])) == 0
    assert "optimality gap skipped" in capsys.readouterr().out
    assert "optimality_gap" not in load_json(out / "statistics.json")["aggregate"]["ippo"]
    # Bad input is a usage error: exit status 2 (as every `jaxmarl` sub-command).
    assert plot_cli.run(_parse([*argv[:3], "nope", *argv[4:]])) == 2
    assert "metric 'nope'" in capsys.readouterr().err
    # --task keeps the matching tasks (glob on the name or env/task), refuses a pattern that
    # matches none, naming the tasks there are.
    assert plot_cli.run(_parse([*argv, "--task", "lbf/10x10*"])) == 0
    assert load_json(out / "statistics.json")["tasks"] == ["lbf/10x10-3p-3f"]
    assert plot_cli.run(_parse([*argv, "--task", "8x8-*", "--task", "10x10-3p-3f"])) == 0
    assert load_json(out / "statistics.json")["tasks"] == ["lbf/8x8-2p-2f", "lbf/10x10-3p-3f"]
    assert plot_cli.run(_parse([*argv, "--task", "smax*"])) == 2
    assert "--task smax*: no task matches (tasks: lbf/8x8-2p-2f, lbf/10x10-3p-3f)" in (
        capsys.readouterr().err
    )
    assert plot_cli.run(_parse(["plot", str(tmp_path / "missing.json"), "--metric", "r"])) == 2
    assert "no such results file" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"e": {"t": {"a": {"s": {"step_0": {"r": [1.0]}}}}}}))
    assert plot_cli.run(_parse(["plot", str(bad), "--metric", "r"])) == 2
    assert "step 'step_0': missing 'step_count'" in capsys.readouterr().err
    assert load_results(FIXTURE)  # inputs untouched


def test_per_task_iqm_table_is_the_trimmed_mean_of_runs_with_a_bootstrap_interval(tmp_path):
    # Absolute metrics per run (mean of its episodes): ippo 0, 1, 2, 3, 100 on one task (IQM of
    # five runs drops one from each end: (1 + 2 + 3) / 3 = 2); mappo 5 on every run.
    path = tmp_path / "results.json"
    for algorithm, values in (("ippo", [0.0, 1.0, 2.0, 3.0, 100.0]), ("mappo", [5.0] * 5)):
        for seed, value in enumerate(values):
            logger = JsonLogger(path, "rware", "tiny", algorithm, seed=seed)
            logger.log_step(1000, {"return": np.array([0.0, 0.0])})
            logger.log_absolute({"return": np.array([value - 1.0, value + 1.0])})
    out = tmp_path / "out"
    argv = ["plot", str(path), "--metric", "return", "--out", str(out), "--reps", "500"]
    assert plot_cli.run(_parse([*argv, "--formats", "png"])) == 0
    iqm = load_json(out / "statistics.json")["per_task_iqm"]["rware/tiny"]
    assert iqm["ippo"]["point"] == pytest.approx(2.0)
    # Resampled runs: the interval stays inside the runs' range and holds the point.
    assert 0.0 <= iqm["ippo"]["lower"] < 2.0 < iqm["ippo"]["upper"] <= 100.0
    assert iqm["mappo"] == {"point": 5.0, "lower": 5.0, "upper": 5.0}
    # The mean table is not robust to the outlier: (0 + 1 + 2 + 3 + 100) / 5 = 21.2.
    assert load_json(out / "statistics.json")["per_task"]["rware/tiny"]["ippo"]["point"] == (
        pytest.approx(21.2)
    )
    rows = {r["task"]: r for r in csv.DictReader(open(out / "per_task_iqm.csv"))}
    assert float(rows["rware/tiny"]["ippo"]) == pytest.approx(2.0)
    assert "IQM over runs" in (out / "per_task_iqm.tex").read_text()
    # The README table: algorithms as rows; three significant digits of the largest IQM (5.00).
    md = (out / "per_task_iqm.md").read_text().splitlines()
    assert md[:2] == ["| algorithm | rware/tiny |", "|---|---:|"]
    assert md[2].startswith("| ippo | 2.00 [") and md[3] == "| mappo | 5.00 [5.00, 5.00] |"


def test_curve_grid_one_panel_per_task_one_colour_per_algorithm(tmp_path, monkeypatch):
    x = np.arange(4.0)
    line = (x, x - 1.0, x + 1.0)
    panels = {
        "lbf": ({"ippo": x, "qmix": x}, {"ippo": line, "qmix": line}),
        "rware": ({"qmix": x, "mappo": x}, {"qmix": line, "mappo": line}),
        "mpe": ({"ippo": x}, {"ippo": line}),
        "smax": ({"mappo": x}, {"mappo": line}),
    }
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, paths: figures.append(fig) or list(paths))
    assert plots.plot_curve_grid(panels, [tmp_path / "g.png"], "return", ncols=3) == [
        tmp_path / "g.png"
    ]
    (fig,) = figures
    axes = fig.axes
    assert len(axes) == 6 and [ax.get_visible() for ax in axes] == [True] * 4 + [False] * 2
    assert [ax.get_title() for ax in axes[:4]] == ["lbf", "rware", "mpe", "smax"]
    colours = {}
    for ax in axes[:4]:
        for artist in ax.get_lines():
            colours.setdefault(artist.get_label(), set()).add(artist.get_color())
    assert sorted(colours) == ["ippo", "mappo", "qmix"]
    assert all(len(c) == 1 for c in colours.values())  # the same colour in every panel
    assert len({next(iter(c)) for c in colours.values()}) == 3
    # One legend for the figure, every algorithm once, in order of first appearance.
    assert [t.get_text() for lg in fig.legends for t in lg.get_texts()] == [
        "ippo",
        "qmix",
        "mappo",
    ]
    with pytest.raises(ValueError, match="no panels"):
        plots.plot_curve_grid({}, [tmp_path / "e.png"], "return")


def load_json(path):
    return json.loads(Path(path).read_text())


def test_one_seed_draws_points_only_and_tables_say_so(tmp_path, capsys, monkeypatch):
    """With one run per (algorithm, task) there is no interval: no zero-width "CI" bars, no
    NaN in the tables, null in the JSON, and every output says why."""
    path = tmp_path / "metrics.json"
    rng = np.random.default_rng(2)
    for algorithm in ("ippo", "mappo"):
        for task in ("tiny", "small"):
            logger = JsonLogger(path, "rware", task, algorithm, seed=0)
            for k in range(3):
                logger.log_step(1000 * (k + 1), {"return": rng.normal(k, 1.0, size=4)})
            logger.log_absolute({"return": rng.normal(3.0, 1.0, size=20)})
    drawn = []
    save = plots._save

    def record(fig, paths):
        ax = fig.axes[0]
        drawn.append(
            {
                "name": Path(paths[0]).stem,
                "bars": len(ax.patches),
                "xlabel": (fig._supxlabel.get_text() if fig._supxlabel else ax.get_xlabel()),
                "legend": [t.get_text() for t in ax.get_legend().get_texts()]
                if ax.get_legend()
                else [],
                "figure_legend": [t.get_text() for lg in fig.legends for t in lg.get_texts()],
            }
        )
        return save(fig, paths)

    monkeypatch.setattr(plots, "_save", record)
    out = tmp_path / "figures"
    argv = ["plot", str(path), "--metric", "return", "--out", str(out), "--reps", "200"]
    assert plot_cli.run(_parse([*argv, "--formats", "png"])) == 0
    assert "one seed per task for ippo, mappo" in capsys.readouterr().out
    figures = {d["name"]: d for d in drawn}
    aggregate = figures["aggregate_scores"]
    assert aggregate["bars"] == 0  # points only: no zero-width "95% CI" bars
    assert aggregate["xlabel"].endswith("(point estimates; one seed: no confidence interval)")
    assert figures["probability_of_improvement"]["bars"] == 0
    assert "one seed" in figures["probability_of_improvement"]["xlabel"]
    assert figures["per_task_curves"]["figure_legend"] == [
        "ippo (one seed: no confidence interval)",
        "mappo (one seed: no confidence interval)",
    ]
    for name in ("sample_efficiency", "performance_profile", "rware__tiny"):
        assert figures[name]["legend"] == [
            "ippo (one seed: no confidence interval)",
            "mappo (one seed: no confidence interval)",
        ], name
    # Tables: empty CSV bounds, "n/a: 1 seed" in LaTeX, no "nan" anywhere; JSON null.
    for name in (
        "aggregate_scores",
        "per_task_scores",
        "per_task_iqm",
        "probability_of_improvement",
    ):
        text = (out / f"{name}.csv").read_text() + (out / f"{name}.tex").read_text()
        assert "nan" not in text.lower(), name
        assert "[n/a: 1 seed]" in (out / f"{name}.tex").read_text(), name
    rows = list(csv.DictReader(open(out / "aggregate_scores.csv")))
    assert rows[0]["iqm_lower"] == rows[0]["iqm_upper"] == "" and float(rows[0]["iqm"]) > -10
    caption = (out / "aggregate_scores.tex").read_text()
    assert "point estimates over 2 task(s). One seed per task: no confidence interval." in caption
    summary = load_json(out / "statistics.json")
    for interval in summary["aggregate"]["ippo"].values():
        assert interval["lower"] is None and interval["upper"] is None
        assert interval["point"] is not None
    assert summary["probability_of_improvement"][0]["lower"] is None


def test_figures_rebuilt_from_the_same_scores_are_the_same_files(tmp_path, scores, monkeypatch):
    """No creation date (PDF, SVG) and no random element ids (SVG): a committed report rebuilt
    from unchanged results at another time leaves git clean."""
    results = st.aggregate_metrics(scores, reps=100)
    files = []
    for attempt, epoch in enumerate(("1000000000", "1900000000")):
        monkeypatch.setenv("SOURCE_DATE_EPOCH", epoch)  # the "now" matplotlib would stamp
        paths = [tmp_path / str(attempt) / f"agg.{ext}" for ext in ("png", "pdf", "svg")]
        files.append([p.read_bytes() for p in plots.plot_aggregate_intervals(results, paths)])
    assert files[0] == files[1]
