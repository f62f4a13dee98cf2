"""The benchmark script keeps working (quick mode), and its peers time the same math."""

import json
import re

import numpy as np
import pytest
from helpers import assert_png, load_script

benchmark = load_script("benchmark")


def test_quick_benchmark_writes_results_table_and_chart(tmp_path):
    result = benchmark.main(["--quick", "--out", str(tmp_path),
                             "--peers", "funcnet,imperative,roofline"])
    record = json.loads((tmp_path / "results.json").read_text())
    rows = record["results"]
    assert rows == result["results"]
    seen = {(r["workload"], r["batch"], r["peer"]) for r in rows}
    for workload in benchmark.QUICK_WORKLOADS:
        for peer in ("funcnet", "imperative"):
            assert (workload.name, workload.batch, peer) in seen
    assert all(r["steps_per_second"] > 0 and r["dtype"] == "float64" for r in rows)
    assert all(len(r["samples"]) == 2 and min(r["samples"]) <= r["seconds_per_step"]
               <= max(r["samples"]) for r in rows)  # --quick: 2 repeats
    table = (tmp_path / "results.md").read_text()
    assert "funcnet / imperative" in table and "mlp 784-100-10" in table
    assert re.search(r"\| \d+\.\d\dx \(\d+\.\d\d–\d+\.\d\d\) \|", table)
    assert_png(tmp_path / "throughput_float64.png")


def test_ratios_are_paired_repeat_by_repeat():
    # imperative takes twice funcnet's time in two repeats of three; the ratio of the two
    # medians (0.5 s and 0.5 s) would say 1.0x, mixing repeats run at different speeds
    rows = {"funcnet": {"samples": [1.0, 0.25, 0.5]},
            "imperative": {"samples": [0.5, 0.5, 1.0]}}
    assert benchmark.paired_ratio(rows, "funcnet", "imperative") == (2.0, 0.5, 2.0)
    assert benchmark.paired_ratio(rows, "funcnet", "roofline") is None


def test_unknown_peer_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="unknown peers"):
        benchmark.main(["--quick", "--out", str(tmp_path), "--peers", "funcnet,numba"])


def _losses(step, n=3):
    return [float(step()) for _ in range(n)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_every_peer_computes_the_same_training_steps(dtype, monkeypatch):
    """Same start, same batch, same SGD: the first losses agree across peers (the imperative
    baseline's log carries the textbook's 1e-7 guard, hence the tolerance). funcnet's epoch
    is one batch here, so each of its calls is one step too."""
    monkeypatch.setattr(benchmark, "EPOCH_SAMPLES", 8)
    workload = benchmark.Workload("mlp 784-100-10", (784, 100, 10), 8, "classifier")
    problem = benchmark.make_problem(workload, dtype, seed=3)
    reference = _losses(benchmark.MAKERS["funcnet"](problem))
    assert reference[2] < reference[0]  # it is training
    for peer in ("imperative", "jax-autodiff-jit", "torch-eager", "funcnet-jit"):
        step = benchmark.MAKERS[peer](benchmark.make_problem(workload, dtype, seed=3))
        if step is None:  # jax or torch not installed: the peer is skipped, as in the script
            continue
        np.testing.assert_allclose(_losses(step), reference,
                                   rtol=1e-5 if dtype == np.float64 else 1e-3, err_msg=peer)
