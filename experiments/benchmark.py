"""Benchmark: a training step of funcnet against the textbook, jax, torch and the GEMM bound.

Every peer runs in ONE process, interleaved repeat by repeat, so the ratios
hold on a noisy machine; each time is the median of the repeats after a
warm-up. A step is forward, loss, backward and an SGD update on one batch.

Peers:
- funcnet: the numpy path, steps as ``fit`` runs them: ``train.epoch_runner`` over an
  epoch of copies of the batch (the loss checked every step, the params once per
  epoch), timed per step.
- imperative: the baseline, written here the textbook's way ("Deep Learning
  from Scratch" ch. 5): layer objects caching on ``self``, ``W -= lr * dW``
  in place, the input gradient of every layer (the first one included).
- jax-autodiff-jit: ``jax.jit`` of ``jax.value_and_grad`` of the same math
  with the same SGD update (a peer here, never funcnet's trainer).
- torch-eager: ``torch.nn`` + ``torch.optim.SGD`` on the CPU, when torch
  can be imported (it is not a funcnet dependency).
- funcnet-jit: funcnet's hand-written forward/backward/update compiled with
  ``jax.jit`` (``funcnet.jit``).
- roofline: only the matrix products the step needs (``np.dot`` into
  preallocated outputs): the lower bound for the numpy peers.

Workloads: MLP 784-100-10 (ReLU, softmax cross-entropy) at batch 1, 32, 128,
1024; MLP 784-1024-1024-10 at batch 256 (GEMM-bound); note 000's 1-3-1
sigmoid regression, batch 1 for 200 epochs (overhead-bound; whole-run time,
reported per step). float32 and float64.

Outputs in ``--out`` (default runs/benchmark): results.json (one row per
workload, batch, dtype and peer, with the seconds per step of every repeat),
results.md (the table and the ratios funcnet / imperative, funcnet / roofline,
funcnet-jit / jax-autodiff-jit) and bar charts. A ratio is taken within each
repeat, where its two peers ran back to back, and the median over the repeats
is reported with the lowest and highest: the machine's speed drifting between
repeats moves both sides of a ratio alike.
"""

from __future__ import annotations

import os
import sys

THREADS_VARIABLE = "FUNCNET_BENCHMARK_THREADS"


def _pin_threads() -> None:
    """Run again with every library's thread pool set to ``--threads`` (default 1).

    Thread counts are read when numpy, jax and torch load, so they are set here,
    before any import, and the script starts over. With one thread each, no
    library's idle-spinning workers steal the core another peer is timing on.
    """
    threads = "1"
    if "--threads" in sys.argv[:-1]:
        threads = sys.argv[sys.argv.index("--threads") + 1]
    env = dict(os.environ, **{THREADS_VARIABLE: threads}, OMP_NUM_THREADS=threads,
               OPENBLAS_NUM_THREADS=threads, MKL_NUM_THREADS=threads,
               XLA_FLAGS=(os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen="
                          + ("false" if threads == "1" else "true")).strip())
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


if __name__ == "__main__" and THREADS_VARIABLE not in os.environ:
    _pin_threads()

import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any, NamedTuple  # noqa: E402

import _common  # noqa: E402
import numpy as np  # noqa: E402

import funcnet  # noqa: E402
from funcnet import data, init, layers, losses, optim, plot, random, train  # noqa: E402

LEARNING_RATE = 0.01
REGRESSION_EPOCHS = 200
REPEATS = 7
EPOCH_SAMPLES = 256  # the funcnet peer's epoch: this many samples, as copies of the batch
TARGET_SECONDS = 0.15  # each timed repeat runs about this long
PEERS = ("funcnet", "imperative", "jax-autodiff-jit", "torch-eager", "funcnet-jit", "roofline")


class Workload(NamedTuple):
    name: str
    sizes: tuple[int, ...]  # input width, then the output widths of the dense layers
    batch: int
    kind: str  # "classifier" (relu + softmax CE, one fixed batch) or "regression" (note 000 run)


WORKLOADS = (
    *(Workload("mlp 784-100-10", (784, 100, 10), b, "classifier") for b in (1, 32, 128, 1024)),
    Workload("mlp 784-1024-1024-10", (784, 1024, 1024, 10), 256, "classifier"),
    Workload("regression 1-3-1", (1, 3, 1), 1, "regression"),
)
QUICK_WORKLOADS = (
    Workload("mlp 784-100-10", (784, 100, 10), 1, "classifier"),
    Workload("mlp 784-100-10", (784, 100, 10), 32, "classifier"),
    Workload("regression 1-3-1", (1, 3, 1), 1, "regression"),
)


class Problem(NamedTuple):
    """One workload in one dtype: the data and the initial weights every peer starts from."""

    workload: Workload
    dtype: np.dtype
    x: np.ndarray
    y: np.ndarray  # int labels (classifier) or targets (regression)
    weights: list  # [(W, b), ...] float arrays


def make_problem(workload: Workload, dtype: Any, seed: int) -> Problem:
    dtype = np.dtype(dtype)
    k_data, k_labels, k_init = random.split(random.key(seed), 3)
    if workload.kind == "regression":
        d = data.sine_regression(dtype=dtype)
        x, y = d.x, d.t
        draw = init.normal(0.01)
    else:
        x = random.normal(k_data, (workload.batch, workload.sizes[0]), dtype)
        y = random.integers(k_labels, 0, workload.sizes[-1], (workload.batch,))
        draw = init.he
    keys = random.split(k_init, 2 * (len(workload.sizes) - 1))
    shapes = list(zip(workload.sizes, workload.sizes[1:], strict=False))
    weights = [(draw(keys[2 * i], (n_in, n_out), dtype),
                (draw(keys[2 * i + 1], (n_out,), dtype) if workload.kind == "regression"
                 else np.zeros(n_out, dtype)))
               for i, (n_in, n_out) in enumerate(shapes)]
    return Problem(workload, dtype, x, y, weights)


# --- peers: each returns a function running one step (or, for the regression, one run) ------


def funcnet_model(problem: Problem) -> tuple[layers.Layer, losses.Loss, tuple]:
    """The workload as a funcnet mlp, its loss, and params holding the problem's weights."""
    w = problem.workload
    if w.kind == "regression":
        net = layers.mlp(list(w.sizes[1:]), activation="sigmoid", dtype=problem.dtype)
        loss = losses.sum_of_squares()
    else:
        net = layers.mlp(list(w.sizes[1:]), activation="relu", dtype=problem.dtype)
        loss = losses.softmax_cross_entropy()
    params = tuple(p for pair in ({"W": W, "b": b} for W, b in problem.weights)
                   for p in (pair, ()))[:-1]
    return net, loss, funcnet.tree.freeze(params)


def regression_run(step_on: Callable[[Any, Any], Any], x: Any, y: Any,
                   finish: Callable[[], Any] = lambda: None) -> Callable[[], Any]:
    """Note 000's whole run for a peer's ``step_on(x, y)``: REGRESSION_EPOCHS epochs of
    batch-1 steps in a shuffled order (a local generator: the peers need not share keys)."""
    rng = np.random.default_rng(0)

    def run():
        for _ in range(REGRESSION_EPOCHS):
            for i in rng.permutation(len(x)):
                step_on(x[i:i + 1], y[i:i + 1])
        return finish()
    return run


def regression_fit(problem: Problem, *, runner: Any = None) -> Callable[[], Any]:
    """Note 000's whole run as funcnet's ``fit`` does it (compiled with ``jit.epoch_runner``)."""
    net, loss, params = funcnet_model(problem)
    opt = optim.sgd(LEARNING_RATE)

    def run():
        return train.fit(net, loss, opt, params, (problem.x, problem.y),
                         epochs=REGRESSION_EPOCHS, batch_size=1, key=random.key(0),
                         progress=False, runner=runner)
    return run


def funcnet_peer(problem: Problem) -> Callable[[], Any]:
    w = problem.workload
    if w.kind == "regression":
        return regression_fit(problem)
    net, loss, params = funcnet_model(problem)
    opt = optim.sgd(LEARNING_RATE)
    # as fit runs it: the configuration checked once, then epochs of copies of the batch, in
    # order (the kernels, the loss tested every step, the params once per epoch); timed per
    # step
    copies = max(1, EPOCH_SAMPLES // w.batch)
    config = train.Config(net, loss, opt, np.concatenate([problem.x] * copies),
                          np.concatenate([problem.y] * copies), w.batch, shuffle=False)
    state = {"train": train.init_state(net, opt, params, random.key(0))}
    train.check_config(config, state["train"])
    run = train.epoch_runner(config)

    def epoch():
        state["train"] = run(state["train"])
        return state["train"].history.loss[-1]
    epoch.steps = copies
    return epoch


class Affine:
    """The textbook's affine layer: caches on self, computes dx always."""

    def __init__(self, W, b):
        self.W, self.b = W.copy(), b.copy()

    def forward(self, x):
        self.x = x
        return np.dot(x, self.W) + self.b

    def backward(self, dout):
        dx = np.dot(dout, self.W.T)
        self.dW = np.dot(self.x.T, dout)
        self.db = np.sum(dout, axis=0)
        return dx


class Relu:
    def forward(self, x):
        self.mask = x <= 0
        out = x.copy()
        out[self.mask] = 0
        return out

    def backward(self, dout):
        dout[self.mask] = 0  # the textbook writes into dout (note 001's bug); harmless here
        return dout


class Sigmoid:
    def forward(self, x):
        self.out = 1 / (1 + np.exp(-x))
        return self.out

    def backward(self, dout):
        return dout * (1.0 - self.out) * self.out


class SoftmaxWithLoss:
    def forward(self, x, t):
        self.t = t
        x = x - x.max(axis=1, keepdims=True)
        self.y = np.exp(x) / np.sum(np.exp(x), axis=1, keepdims=True)
        return -np.sum(np.log(self.y[np.arange(len(t)), t] + 1e-7)) / len(t)

    def backward(self):
        dx = self.y.copy()
        dx[np.arange(len(self.t)), self.t] -= 1
        return dx / len(self.t)


class SumOfSquares:
    def forward(self, y, t):
        self.y, self.t = y, t
        return 0.5 * np.sum((y - t) ** 2)

    def backward(self):
        return self.y - self.t


def imperative_peer(problem: Problem) -> Callable[[], Any]:
    w = problem.workload
    affines = [Affine(W, b) for W, b in problem.weights]
    activation = Sigmoid if w.kind == "regression" else Relu
    stack = []
    for i, a in enumerate(affines):
        stack.append(a)
        if i < len(affines) - 1:
            stack.append(activation())
    last = SumOfSquares() if w.kind == "regression" else SoftmaxWithLoss()

    def step_on(x, t):
        for layer in stack:
            x = layer.forward(x)
        value = last.forward(x, t)
        dout = last.backward()
        for layer in reversed(stack):
            dout = layer.backward(dout)
        for a in affines:
            a.W -= LEARNING_RATE * a.dW
            a.b -= LEARNING_RATE * a.db
        return value

    if w.kind == "regression":
        return regression_run(step_on, problem.x, problem.y)
    return lambda: step_on(problem.x, problem.y)


def roofline_peer(problem: Problem) -> Callable[[], Any]:
    """Only the GEMMs a step needs: forward x@W per layer; dW per layer; dx for layers 2.."""
    w = problem.workload
    if w.kind == "regression":
        return None
    batch = w.batch
    acts = [problem.x] + [np.ones((batch, W.shape[1]), problem.dtype) for W, _ in
                          problem.weights]
    grads_out = [np.ones((batch, W.shape[1]), problem.dtype) for W, _ in problem.weights]
    dWs = [np.empty_like(W) for W, _ in problem.weights]
    dxs = [np.empty((batch, W.shape[0]), problem.dtype) for W, _ in problem.weights]

    def step():
        for i, (W, _) in enumerate(problem.weights):
            np.dot(acts[i], W, out=acts[i + 1])
        for i in range(len(problem.weights) - 1, -1, -1):
            W = problem.weights[i][0]
            np.dot(acts[i].T, grads_out[i], out=dWs[i])
            if i > 0:
                np.dot(grads_out[i], W.T, out=dxs[i])
    return step


def jax_peer(problem: Problem) -> Callable[[], Any] | None:
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    w = problem.workload
    params = [(jnp.asarray(W), jnp.asarray(b)) for W, b in problem.weights]
    regression = w.kind == "regression"

    def loss_fn(params, x, y):
        h = x
        for i, (W, b) in enumerate(params):
            h = h @ W + b
            if i < len(params) - 1:
                h = jax.nn.sigmoid(h) if regression else jax.nn.relu(h)
        if regression:
            return 0.5 * jnp.sum((h - y) ** 2)
        logp = jax.nn.log_softmax(h)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    @jax.jit
    def step(params, x, y):
        value, grads = jax.value_and_grad(loss_fn)(params, x, y)
        return [(W - LEARNING_RATE * gW, b - LEARNING_RATE * gb)
                for (W, b), (gW, gb) in zip(params, grads, strict=True)], value

    x, y = jnp.asarray(problem.x), jnp.asarray(problem.y)
    state = {"params": params}
    if regression:
        def step_on(xb, yb):
            state["params"], _ = step(state["params"], xb, yb)

        return regression_run(step_on, x, y,
                              finish=lambda: jax.block_until_ready(state["params"]))

    def one():
        state["params"], value = step(state["params"], x, y)
        return value.block_until_ready()
    return one


def torch_peer(problem: Problem) -> Callable[[], Any] | None:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(int(os.environ.get(THREADS_VARIABLE, torch.get_num_threads())))
    w = problem.workload
    dtype = torch.float32 if problem.dtype == np.float32 else torch.float64
    mods = []
    for i, (W, b) in enumerate(problem.weights):
        linear = torch.nn.Linear(W.shape[0], W.shape[1], dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
            linear.bias.copy_(torch.from_numpy(np.array(b)))
        mods.append(linear)
        if i < len(problem.weights) - 1:
            mods.append(torch.nn.Sigmoid() if w.kind == "regression" else torch.nn.ReLU())
    model = torch.nn.Sequential(*mods)
    opt = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    x = torch.from_numpy(np.array(problem.x))
    y = torch.from_numpy(np.array(problem.y))
    lossf = (torch.nn.MSELoss(reduction="sum") if w.kind == "regression"
             else torch.nn.CrossEntropyLoss())

    def step_on(xb, yb):
        opt.zero_grad(set_to_none=True)
        out = model(xb)
        value = lossf(out, yb) * (0.5 if w.kind == "regression" else 1.0)
        value.backward()
        opt.step()
        return value.detach()

    if w.kind == "regression":
        return regression_run(step_on, x, y)
    return lambda: step_on(x, y)


def funcnet_jit_peer(problem: Problem) -> Callable[[], Any] | None:
    try:
        from funcnet import jit
    except ImportError:
        return None
    w = problem.workload
    if w.kind == "regression":
        return regression_fit(problem, runner=jit.epoch_runner)
    net, loss, params = funcnet_model(problem)
    opt = optim.sgd(LEARNING_RATE)
    step = jit.jit_step(net, loss, opt)
    state = {"params": jit.to_device(params), "opt": jit.to_device(opt.init(params))}
    x, y = jit.to_device(problem.x), jit.to_device(problem.y)

    def one():
        state["params"], state["opt"], _, value = step(state["params"], state["opt"], x, y)
        return value.block_until_ready()
    return one


MAKERS = {
    "funcnet": funcnet_peer,
    "imperative": imperative_peer,
    "jax-autodiff-jit": jax_peer,
    "torch-eager": torch_peer,
    "funcnet-jit": funcnet_jit_peer,
    "roofline": roofline_peer,
}


# --- timing ----------------------------------------------------------------------------------


def _calls_per_repeat(fn: Callable[[], Any], target: float) -> int:
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    return max(1, int(target / once))


def time_samples(problem: Problem, peers: tuple[str, ...], repeats: int,
                 target: float) -> dict[str, list[float]]:
    """Seconds per step of each peer in every repeat, the peers interleaved within each."""
    fns = {}
    for name in peers:
        fn = MAKERS[name](problem)
        if fn is not None:
            fn()  # warm-up (and jit compilation)
            fns[name] = fn
    counts = {name: _calls_per_repeat(fn, target) for name, fn in fns.items()}
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            steps_per_call = (REGRESSION_EPOCHS * len(problem.x)
                              if problem.workload.kind == "regression"
                              else getattr(fn, "steps", 1))
            start = time.perf_counter()
            for _ in range(counts[name]):
                fn()
            elapsed = time.perf_counter() - start
            samples[name].append(elapsed / (counts[name] * steps_per_call))
    return samples


def time_peers(problem: Problem, peers: tuple[str, ...], repeats: int,
               target: float) -> dict[str, float]:
    """Median seconds per step of each peer, the peers interleaved within every repeat."""
    return {name: statistics.median(values)
            for name, values in time_samples(problem, peers, repeats, target).items()}


def paired_ratio(rows: dict, over: str, under: str) -> tuple[float, float, float] | None:
    """``time[under] / time[over]`` repeat by repeat (the two ran back to back, so a
    machine that speeds up or slows down between repeats moves both): the median, the
    lowest and the highest; None when either peer is missing."""
    if over not in rows or under not in rows:
        return None
    ratios = sorted(u / o for o, u in zip(rows[over]["samples"], rows[under]["samples"],
                                           strict=True))
    return statistics.median(ratios), ratios[0], ratios[-1]


def markdown(results: list[dict]) -> str:
    by_case: dict[tuple, dict[str, dict]] = {}
    for r in results:
        by_case.setdefault((r["workload"], r["batch"], r["dtype"]), {})[r["peer"]] = r
    peers = [p for p in PEERS if any(p in v for v in by_case.values())]
    lines = ["# funcnet benchmark: steps per second (higher is better)", "",
             "| workload | batch | dtype | " + " | ".join(peers)
             + " | funcnet / imperative | funcnet / roofline (time) "
             "| funcnet-jit / jax-autodiff-jit |",
             "|" + "---|" * (3 + len(peers) + 3)]

    def fmt(found):
        return "-" if found is None else f"{found[0]:.2f}x ({found[1]:.2f}–{found[2]:.2f})"

    for (workload, batch, dtype), rows in by_case.items():
        cells = [f"{rows[p]['steps_per_second']:,.0f}" if p in rows else "-" for p in peers]
        speed = paired_ratio(rows, "funcnet", "imperative")
        roof = paired_ratio(rows, "roofline", "funcnet")  # a time ratio: funcnet's over the bound
        jit = paired_ratio(rows, "funcnet-jit", "jax-autodiff-jit")
        lines.append(f"| {workload} | {batch} | {dtype} | " + " | ".join(cells)
                     + f" | {fmt(speed)} | {fmt(roof)} | {fmt(jit)} |")
    lines += ["", "Steps per second are medians over the repeats. funcnet / imperative and "
              "funcnet-jit / jax-autodiff-jit are speed ratios (above 1: funcnet faster); "
              "funcnet / roofline is a time ratio (1 is the bound). Each ratio is the median "
              "of the ratios within each repeat, where the two peers ran back to back, with "
              "the lowest and highest in brackets."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    args = _common.parse_args("benchmark", __doc__, argv, extra=lambda p: (
        p.add_argument("--repeats", type=int, default=None),
        p.add_argument("--threads", type=int, default=1,
                       help="threads for every library's pool (default 1, see _pin_threads)"),
        p.add_argument("--peers", default=",".join(PEERS),
                       help="comma-separated subset of " + ",".join(PEERS))))
    try:
        import jax
        jax.config.update("jax_enable_x64", True)  # float64 peers really run in float64
    except ImportError:
        pass
    peers = tuple(p for p in args.peers.split(",") if p)
    unknown = set(peers) - set(PEERS)
    if unknown:
        raise SystemExit(f"benchmark: unknown peers {sorted(unknown)}; choose from {PEERS}")
    workloads = QUICK_WORKLOADS if args.quick else WORKLOADS
    dtypes = (np.float64,) if args.quick else (np.float32, np.float64)
    repeats = args.repeats or (2 if args.quick else REPEATS)
    target = 0.01 if args.quick else TARGET_SECONDS
    global REGRESSION_EPOCHS
    if args.quick:
        REGRESSION_EPOCHS = 2
    results = []
    for workload in workloads:
        for dtype in dtypes:
            problem = make_problem(workload, dtype, args.seed)
            samples = time_samples(problem, peers, repeats, target)
            for peer, values in samples.items():
                seconds = statistics.median(values)
                results.append({"workload": workload.name, "batch": workload.batch,
                                "dtype": np.dtype(dtype).name, "peer": peer,
                                "seconds_per_step": seconds, "steps_per_second": 1 / seconds,
                                "samples": values})
            _common.say(f"{workload.name} batch {workload.batch} {np.dtype(dtype).name}: "
                        + ", ".join(f"{p} {1 / statistics.median(v):,.0f}/s"
                                    for p, v in samples.items()))
    table = markdown(results)
    (args.out / "results.md").write_text(table)
    with open(args.out / "results.json", "w") as f:
        json.dump({"cpu_count": os.cpu_count(), "threads": os.environ.get(THREADS_VARIABLE),
                   "versions": _common.versions(),
                   "regression_epochs": REGRESSION_EPOCHS, "results": results}, f, indent=2)
    for dtype in {r["dtype"] for r in results}:
        groups = {}
        for r in results:
            if r["dtype"] == dtype:
                groups.setdefault(f"{r['workload']}\nbatch {r['batch']}", {})[r["peer"]] = \
                    r["steps_per_second"]
        plot.save(plot.bar_chart(groups, ylabel="steps per second", log_y=True,
                                 title=f"training step throughput, {dtype}"),
                  args.out / f"throughput_{dtype}.png")
    print(table)
    metrics = {"rows": len(results)}
    _common.write_metrics(args.out, "benchmark", config={"workloads": [w._asdict() for w in
                                                                       workloads],
                                                         "repeats": repeats, "peers": peers},
                          seed=args.seed, metrics=metrics)
    return {"results": results, "table": table}


if __name__ == "__main__":
    main()
