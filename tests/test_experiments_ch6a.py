"""DLFS §6.1 and §6.2: the optimizer and weight-initialisation experiments show the findings.

Each script runs once in ``--quick`` mode into a temporary folder (the
trajectories on the bowl and the activation statistics do not depend on the
quick switch; only the digits training is shortened). The scripts live in
experiments/ and import ``_common`` from beside them, so that folder goes on
sys.path here (the scripts themselves never touch it).
"""

import json
import math

import numpy as np
import pytest
from helpers import assert_png, load_script

from funcnet import optim

optimizers = load_script("optimizers")
weight_init = load_script("weight_init")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """name -> (returned metrics, output folder, printed text), each script run once, lazily."""
    done = {}

    def run(name, module, capsys):
        if name not in done:
            out = tmp_path_factory.mktemp(name)
            with np.errstate(all="raise"):
                metrics = module.main(["--quick", "--out", str(out)])
            done[name] = (metrics, out, capsys.readouterr().out)
        return done[name]

    return run


@pytest.fixture
def bowl_run(runs, capsys):
    return runs("optimizers", optimizers, capsys)


@pytest.fixture
def init_run(runs, capsys):
    return runs("weight_init", weight_init, capsys)



def leaves(value, path=""):
    """(path, leaf) for every leaf of a nested dict/list metrics value."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from leaves(v, f"{path}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from leaves(v, f"{path}[{i}]")
    else:
        yield path, value


def check_record(out, name, metrics):
    """metrics.json holds the returned metrics, the config, the seed and the versions."""
    import _common  # beside the scripts: load_script, at the top, put experiments/ on sys.path

    record = json.loads((out / "metrics.json").read_text())
    assert record["experiment"] == name and record["seed"] == 0
    assert {"python", "numpy", "matplotlib"} <= set(record["versions"])
    assert record["config"]["quick"] is True
    assert record["metrics"] == json.loads(json.dumps(_common._plain(metrics)))
    for path, leaf in leaves(record["metrics"]):
        if leaf is None:  # only "never reached" may be missing
            assert path.endswith("epochs_to_fast_loss"), path
        elif not isinstance(leaf, bool | str):
            assert isinstance(leaf, int | float) and math.isfinite(leaf), path
    return record


# --- optimizers.py ----------------------------------------------------------------------


def test_optimizers_writes_figures_and_metrics(bowl_run):
    metrics, out, _ = bowl_run
    names = list(optimizers.OPTIMIZERS)
    for file in ["paths.png", "loss_curves.png", *(f"paths_{n.lower()}.png" for n in names)]:
        assert_png(out / file)
    record = check_record(out, "optimizers", metrics)
    assert set(metrics["bowl"]["optimizers"]) == set(names) == set(metrics["digits"])
    steps = record["config"]["digits"]["steps"]
    assert steps == optimizers.QUICK_EPOCHS * (1437 // optimizers.BATCH_SIZE)
    for name, row in metrics["digits"].items():
        assert row["final_loss"] > 0 and 0 <= row["test_accuracy"] <= 1, name


def test_hand_gradient_of_the_bowl_matches_central_differences():
    h = 1e-6
    for p in ([-7.0, 2.0], [3.0, -0.5], [0.1, 4.0]):
        p = np.array(p)
        numeric = [(optimizers.f(*(p + h * e)) - optimizers.f(*(p - h * e))) / (2 * h)
                   for e in np.eye(2)]
        np.testing.assert_allclose(optimizers.grad_f(p), numeric, rtol=0, atol=1e-7)


def test_descend_takes_the_textbooks_first_sgd_step():
    """(-7, 2) - 0.95 (−0.7, 4) = (−6.335, −1.8), by hand."""
    path = optimizers.descend(optim.sgd(0.95), 1)
    np.testing.assert_allclose(path, [[-7.0, 2.0], [-6.335, -1.8]], rtol=1e-12)


def test_every_optimizer_goes_downhill_on_the_bowl(bowl_run):
    metrics, _, _ = bowl_run
    bowl = metrics["bowl"]
    assert bowl["start_value"] == pytest.approx(49 / 20 + 4)
    for name, row in bowl["optimizers"].items():
        x, y = row["final_point"]
        assert row["final_value"] == pytest.approx(x**2 / 20 + y**2), name
        assert row["distance"] == pytest.approx(math.hypot(x, y)), name
        assert row["final_value"] < bowl["start_value"] / 10, name
        assert row["distance"] < math.hypot(*optimizers.START) / 5, name


def test_optimizers_says_which_findings_match(bowl_run):
    metrics, _, printed = bowl_run
    losses = {name: row["final_loss"] for name, row in metrics["digits"].items()}
    assert metrics["sgd_slowest"] == (max(losses, key=losses.get) == "SGD")
    assert metrics["faster_than_sgd"] == [n for n in losses if losses[n] < losses["SGD"]]
    assert "textbook: SGD is the slowest. Here: " in printed
    assert "optimizer" in printed and "test acc" in printed  # the table


# --- weight_init.py ---------------------------------------------------------------------


def test_weight_init_writes_figures_and_metrics(init_run):
    metrics, out, _ = init_run
    for activation in weight_init.ACTIVATIONS:
        for label in weight_init.HISTOGRAM_INITS:
            assert_png(out / f"histograms_{activation}_{label.lower().replace(' ', '_')}.png")
    assert_png(out / "loss_curves.png")
    check_record(out, "weight_init", metrics)
    assert set(metrics["final_loss"]) == set(weight_init.TRAINING_INITS)
    for label, row in metrics["activations"]["sigmoid"].items():
        assert len(row["std"]) == len(row["saturated"]) == weight_init.DEPTH, label
    for label, row in metrics["activations"]["relu"].items():
        assert len(row["std"]) == len(row["zero"]) == weight_init.DEPTH, label


def test_sigmoid_at_std_001_piles_up_at_one_half(init_run):
    small = init_run[0]["activations"]["sigmoid"]["std 0.01"]
    assert all(abs(m - 0.5) < 0.01 for m in small["mean"])
    assert all(s < 0.05 for s in small["std"][1:])
    assert all(s == 0 for s in small["saturated"])
    wide = init_run[0]["activations"]["sigmoid"]["std 1"]
    assert all(s > 0.5 for s in wide["saturated"])  # the textbook's first figure: 0s and 1s


def test_relu_at_std_001_collapses_and_he_keeps_its_spread(init_run):
    relu = init_run[0]["activations"]["relu"]
    small = relu["std 0.01"]["std"]
    assert all(deeper < shallower / 5 for shallower, deeper in zip(small, small[1:], strict=False))
    assert small[-1] < 1e-4
    he = relu["He"]["std"]
    assert max(he) / min(he) < 2
    assert all(0.3 < s < 3 for s in he)


def test_relu_statistics_scale_as_the_initialisers(init_run):
    """Bias 0 and one set of draws: layer l of He is sqrt(2)^l times layer l of Xavier,
    and of std 0.01 is (0.01 / 0.1)^l times it; ReLU zeroes the same units in all."""
    relu = init_run[0]["activations"]["relu"]
    xavier = np.array(relu["Xavier"]["std"])
    layer = np.arange(1, weight_init.DEPTH + 1)
    std = 1 / math.sqrt(weight_init.WIDTH)
    np.testing.assert_allclose(relu["He"]["std"], xavier * math.sqrt(2) ** layer, rtol=1e-9)
    np.testing.assert_allclose(relu["std 0.01"]["std"], xavier * (0.01 / std) ** layer,
                               rtol=1e-9)
    zeros = {label: row["zero"] for label, row in relu.items()}
    assert len({tuple(z) for z in zeros.values()}) == 1
    assert all(0.4 < z < 0.6 for z in zeros["He"])


def test_weight_init_reports_whether_std_001_learned(init_run):
    metrics, _, printed = init_run
    small = metrics["final_loss"]["std 0.01"]
    assert metrics["small_init_stuck_at_chance"] == (abs(small - math.log(10)) <= weight_init.STUCK)
    assert metrics["small_init_stuck_at_chance"]  # 1 epoch or 182: it does not move
    assert metrics["learned"] == [label for label in ("Xavier", "He")
                                  if metrics["final_loss"][label] < math.log(10) - 0.05]
    assert "textbook: std 0.01 does not learn" in printed and "matches" in printed
