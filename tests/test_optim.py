"""Tests of funcnet.optim, run over a registry of every optimizer and schedule.

Each registry entry carries a hand computation of the first steps written
from the textbook's formulas with plain numpy, independent of the module.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest
from helpers import assert_bitwise_equal, assert_trees_close, defined_functions

from funcnet import optim
from funcnet import tree as ftree
from funcnet.errors import ArgumentError, ArrayTypeError, ShapeError, StructureError


@pytest.fixture(autouse=True)
def _strict_numerics():
    with np.errstate(all="raise", under="ignore"):
        yield


# --- the registry: textbook hand computations, plain numpy --------------------------------


def rate(lr, step):
    """A fixed rate, or a schedule's rate at ``step`` (updates done before this one)."""
    return lr(step) if callable(lr) else lr


def hand_sgd(w, grad, steps, lr=0.1):
    out = []
    for step in range(steps):
        w = w - rate(lr, step) * grad(w)
        out.append(w)
    return out


def hand_momentum(w, grad, steps, lr=0.1, m=0.9):
    v, out = np.zeros_like(w), []
    for step in range(steps):
        v = m * v - rate(lr, step) * grad(w)
        w = w + v
        out.append(w)
    return out


def hand_nesterov(w, grad, steps, lr=0.1, m=0.9):
    # the textbook's common/optimizer.py, line by line, on copies
    v, w, out = np.zeros_like(w), w.copy(), []
    for step in range(steps):
        g = grad(w)
        v *= m
        v -= rate(lr, step) * g
        w += m * m * v
        w -= (1 + m) * rate(lr, step) * g
        out.append(w.copy())
    return out


def hand_adagrad(w, grad, steps, lr=0.1, eps=1e-7):
    h, out = np.zeros_like(w), []
    for step in range(steps):
        g = grad(w)
        h = h + g * g
        w = w - rate(lr, step) * g / (np.sqrt(h) + eps)
        out.append(w)
    return out


def hand_rmsprop(w, grad, steps, lr=0.1, decay=0.99, eps=1e-7):
    h, out = np.zeros_like(w), []
    for step in range(steps):
        g = grad(w)
        h = decay * h + (1 - decay) * g * g
        w = w - rate(lr, step) * g / (np.sqrt(h) + eps)
        out.append(w)
    return out


def hand_adam(w, grad, steps, lr=0.1, b1=0.9, b2=0.999, eps=1e-8):
    m, v, out = np.zeros_like(w), np.zeros_like(w), []
    for step in range(steps):
        t = step + 1
        g = grad(w)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        w = w - rate(lr, step) * m_hat / (np.sqrt(v_hat) + eps)
        out.append(w)
    return out


class Case(NamedTuple):
    make: Callable[..., optim.Optimizer]  # (learning_rate, **options) -> Optimizer
    hand: Callable  # (w, grad, steps, lr=...) -> params after each step, with make's defaults
    state: type
    parabola: tuple[dict, int]  # (constructor arguments, max steps) to converge on the parabola
    rosenbrock: tuple[dict, int]  # the same for Rosenbrock


REGISTRY = {
    "sgd": Case(optim.sgd, hand_sgd, optim.SgdState,
                ({"learning_rate": 0.2}, 40), ({"learning_rate": 0.0019}, 9500)),
    "momentum": Case(optim.momentum, hand_momentum, optim.MomentumState,
                     ({"learning_rate": 0.1}, 150),
                     ({"learning_rate": 0.0015, "momentum": 0.95}, 600)),
    "nesterov": Case(optim.nesterov, hand_nesterov, optim.NesterovState,
                     ({"learning_rate": 0.05}, 80),
                     ({"learning_rate": 0.0008, "momentum": 0.95}, 1000)),
    "adagrad": Case(optim.adagrad, hand_adagrad, optim.AdagradState,
                    ({"learning_rate": 1.0}, 60), ({"learning_rate": 1.5}, 8000)),
    "rmsprop": Case(optim.rmsprop, hand_rmsprop, optim.RmspropState,
                    ({"learning_rate": optim.exponential(0.1, 0.1, 100)}, 100),
                    ({"learning_rate": optim.exponential(0.03, 0.1, 2000)}, 6500)),
    "adam": Case(optim.adam, hand_adam, optim.AdamState,
                 ({"learning_rate": 0.1}, 250), ({"learning_rate": 0.1}, 1400)),
}
NAMES = sorted(REGISTRY)


def make(name, learning_rate=0.1, **options):
    return REGISTRY[name].make(learning_rate, **options)


def test_registry_covers_every_optimizer():
    assert set(optim.CONSTRUCTORS) == set(REGISTRY), "add the missing optimizer to REGISTRY"
    public = {n for n in optim.__all__ if callable(getattr(optim, n))
              and n[0].islower() and getattr(optim, n) not in optim.SCHEDULES.values()}
    assert public == set(optim.CONSTRUCTORS) | {"math_of"}  # math_of: the protocol's helper
    unlisted = (defined_functions(optim) - set(optim.SCHEDULES) - {"math_of"}
                - set(optim.CONSTRUCTORS))
    assert not unlisted, f"not in CONSTRUCTORS: {sorted(unlisted)}"


# --- first steps against the textbook ------------------------------------------------------

C = np.array([1.0, 2.0, -3.0])
SCALE = np.array([1.0, 0.3, 4.0])


def parabola_grad(w):
    return 2 * SCALE * (w - C)


def run(opt, w, grad, steps):
    state, out = opt.init(w), []
    for _ in range(steps):
        w, state = opt.update(grad(w), state, w)
        out.append(w)
    return out, state


@pytest.mark.parametrize("name", NAMES)
def test_first_steps_match_the_textbook(name):
    w0 = np.array([0.5, -1.5, 2.0])
    got, state = run(make(name), w0, parabola_grad, 3)
    want = REGISTRY[name].hand(w0, parabola_grad, 3)
    for g, h in zip(got, want, strict=True):
        np.testing.assert_allclose(g, h, rtol=0, atol=1e-12)
    assert type(state) is REGISTRY[name].state
    assert state.count.dtype == np.int64 and state.count.shape == () and int(state.count) == 3


def test_first_steps_with_other_hyperparameters():
    w0 = np.array([0.5, -1.5, 2.0])
    cases = [
        (optim.momentum(0.05, 0.5), lambda: hand_momentum(w0, parabola_grad, 3, 0.05, 0.5)),
        (optim.nesterov(0.05, 0.7), lambda: hand_nesterov(w0, parabola_grad, 3, 0.05, 0.7)),
        (optim.adagrad(0.2, 1e-3), lambda: hand_adagrad(w0, parabola_grad, 3, 0.2, 1e-3)),
        (optim.rmsprop(0.2, 0.5, 1e-3), lambda: hand_rmsprop(w0, parabola_grad, 3, 0.2, 0.5,
                                                             1e-3)),
        (optim.adam(0.2, 0.5, 0.6, 1e-3), lambda: hand_adam(w0, parabola_grad, 3, 0.2, 0.5, 0.6,
                                                            1e-3)),
    ]
    for opt, hand in cases:
        got, _ = run(opt, w0, parabola_grad, 3)
        for g, h in zip(got, hand(), strict=True):
            np.testing.assert_allclose(g, h, rtol=0, atol=1e-12)


# --- laws ----------------------------------------------------------------------------------


class Pair(NamedTuple):
    first: Any
    second: Any


def shaped(kind: str, dtype=np.float64):
    """Params of one kind of tree (every leaf distinct and non-zero), and grads like them."""
    a = np.arange(1.0, 5.0, dtype=dtype).reshape(2, 2)
    b = np.array([0.5, -1.5], dtype)
    c = np.array(-2.0, dtype)
    params = {
        "bare": a,
        "tuple": (a, b),
        "dict": {"W": a, "b": b},
        "nested": {"dense": {"W": a, "b": b}, "pair": Pair(c, ()), "none": ()},
    }[kind]
    grads = ftree.map(lambda x: (0.5 - x) * 0.3, params)
    return params, grads


KINDS = ["bare", "tuple", "dict", "nested"]


def copy_tree(t):
    return ftree.map(lambda x: np.array(x, copy=True), t)


def bitwise_equal(a, b):
    ftree.assert_same_structure(a, b, who="test")
    return all(x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()
               for x, y in zip(ftree.leaves(a), ftree.leaves(b), strict=True))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", KINDS)
def test_update_keeps_structure_and_state_stays_stable(name, kind):
    params, grads = shaped(kind)
    opt = make(name)
    state = opt.init(params)
    start = ftree.structure(state)
    for step in range(1, 4):
        new, state = opt.update(grads, state, params)
        ftree.assert_same_shapes(params, new, who="test", actual_name="new", check_dtype=True)
        assert ftree.structure(state) == start and type(state) is REGISTRY[name].state
        for field in state._fields[1:]:
            ftree.assert_same_shapes(params, getattr(state, field), who="test",
                                     check_dtype=True)
        assert int(state.count) == step
        params = new


@pytest.mark.parametrize("name", NAMES)
def test_new_params_and_state_are_frozen(name):
    params, grads = shaped("nested")
    opt = make(name, weight_decay=0.1, max_grad_norm=0.5)
    new, state = opt.update(grads, opt.init(params), params)
    assert ftree.is_frozen(new) and ftree.is_frozen(state) and ftree.is_frozen(opt.init(params))
    with pytest.raises(ValueError, match="read-only"):
        new["dense"]["W"][0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        new["pair"].first[...] = 1.0


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("options", [{}, {"weight_decay": 0.1, "max_grad_norm": 0.5},
                                     {"weight_decay": 0.1, "decoupled": True}])
def test_inputs_are_bitwise_unchanged(name, options):
    params, grads = shaped("nested")
    opt = make(name, **options)
    state = opt.init(params)
    state = opt.update(grads, state, params)[1]  # a state with non-zero entries
    before = copy_tree((grads, state, params))
    opt.update(grads, state, params)
    assert bitwise_equal(before, (grads, state, params))


@pytest.mark.parametrize("name", NAMES)
def test_zero_gradient_from_init_leaves_params_unchanged(name):
    params, _ = shaped("nested")
    zeros = ftree.map(np.zeros_like, params)
    opt = make(name)
    new, state = opt.update(zeros, opt.init(params), params)
    assert bitwise_equal(new, params)
    assert int(state.count) == 1


@pytest.mark.parametrize("name", NAMES)
def test_zero_learning_rate_never_moves_params(name):
    params, grads = shaped("dict")
    opt = make(name, 0.0)
    state, new = opt.init(params), params
    for k in range(3):
        new, state = opt.update(ftree.scale(k + 1.0, grads), state, new)
    assert bitwise_equal(new, params)


@pytest.mark.parametrize("name", ["momentum", "nesterov"])
def test_momentum_zero_is_sgd(name):
    w0 = np.array([0.5, -1.5, 2.0])
    got, _ = run(make(name, 0.1, momentum=0.0), w0, parabola_grad, 4)
    want, _ = run(optim.sgd(0.1), w0, parabola_grad, 4)
    assert all(np.array_equal(g, h) for g, h in zip(got, want, strict=True))


# --- convergence ---------------------------------------------------------------------------


def pack(kind: str, v: np.ndarray):
    """Spread the coordinates ``v`` over a tree of the given kind (dm-tree leaf order)."""
    n = v.size
    if kind == "bare":
        return v.copy()
    if kind == "tuple":
        return tuple(np.array(x) for x in v)  # 0-d leaves
    if kind == "dict":
        return {f"w{i}": v[i:i + 1].copy() for i in range(n)}
    # nested: a dict holding a tuple and a NamedTuple with a 0-d leaf and an empty subtree
    return {"a": (v[:n - 1].copy(),), "b": Pair(np.array(v[n - 1]), ())}


def unpack(t) -> np.ndarray:
    return np.concatenate([np.ravel(x) for x in ftree.leaves(t)])


def converge(opt, kind, v0, grad, steps, target, tol=1e-3):
    """Run ``opt`` from ``v0`` spread over a tree of ``kind``: the steps it took to get near."""
    params = pack(kind, v0)
    state = opt.init(params)
    for i in range(steps):
        v = unpack(params)
        if np.max(np.abs(v - target)) < tol:
            return i
        params, state = opt.update(pack(kind, grad(v)), state, params)
    raise AssertionError(f"no convergence in {steps} steps: at {unpack(params)}")


PARABOLA_C = np.array([1.0, -2.0, 3.0, 0.5])


def rosenbrock_grad(v):
    x, y = v
    return np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])


def test_layouts_are_distinct_trees():
    v = np.arange(4.0)
    for kind in KINDS:
        assert np.array_equal(unpack(pack(kind, v)), v)
    assert len({str(ftree.structure(pack(kind, v))) for kind in KINDS}) == 4


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", KINDS)
def test_converges_on_a_parabola(name, kind):
    arguments, steps = REGISTRY[name].parabola
    grad = lambda v: 2 * (v - PARABOLA_C)  # noqa: E731
    converge(REGISTRY[name].make(**arguments), kind, np.zeros(4), grad, steps, PARABOLA_C)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", KINDS)
def test_converges_on_rosenbrock(name, kind):
    arguments, steps = REGISTRY[name].rosenbrock
    converge(REGISTRY[name].make(**arguments), kind, np.array([-1.2, 1.0]), rosenbrock_grad,
             steps, np.ones(2))


# --- float32 -------------------------------------------------------------------------------

FLOAT32_OPTIONS = [
    {},
    {"weight_decay": 0.1},
    {"weight_decay": 0.1, "decoupled": True},
    {"max_grad_norm": 0.5},
    {"learning_rate": optim.cosine(0.1, 3)},
    {"learning_rate": optim.exponential(0.1, 0.5, 2), "max_grad_norm": 1e-3,
     "weight_decay": 0.01},
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("options", FLOAT32_OPTIONS, ids=range(len(FLOAT32_OPTIONS)))
def test_float32_in_float32_out(name, options):
    params, grads = shaped("nested", np.float32)
    opt = make(name, **{"learning_rate": 0.1, **options})
    state = opt.init(params)
    for _ in range(3):
        params, state = opt.update(grads, state, params)
    assert {x.dtype for x in ftree.leaves(params)} == {np.dtype(np.float32)}
    assert all(type(x) is np.ndarray for x in ftree.leaves((params, state)))
    assert {x.dtype for x in ftree.leaves(state[1:])} <= {np.dtype(np.float32)}
    assert state.count.dtype == np.int64


# --- weight decay and clipping -------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_l2_weight_decay_adds_to_the_gradient(name):
    params, grads = shaped("dict")
    wd = 0.3
    got, _ = make(name, weight_decay=wd).update(grads, make(name).init(params), params)
    decayed = {"W": grads["W"] + wd * params["W"], "b": grads["b"]}  # the mask skips b
    want, _ = make(name).update(decayed, make(name).init(params), params)
    assert bitwise_equal(got, want)


@pytest.mark.parametrize("name", NAMES)
def test_decoupled_weight_decay_subtracts_after_the_rule(name):
    params, grads = shaped("dict")
    lr, wd = 0.1, 0.3
    opt = make(name, lr, weight_decay=wd, decoupled=True)
    got, _ = opt.update(grads, opt.init(params), params)
    plain, _ = make(name, lr).update(grads, opt.init(params), params)
    np.testing.assert_allclose(got["W"], plain["W"] - lr * wd * params["W"], rtol=0, atol=1e-15)
    assert np.array_equal(got["b"], plain["b"])


def test_adam_weight_decay_one_step_by_hand():
    W, g = np.array([[2.0, -1.0], [0.5, 3.0]]), np.array([[0.1, 0.4], [-0.3, 0.2]])
    lr, wd, eps = 0.01, 0.5, 1e-8
    l2, _ = optim.adam(lr, weight_decay=wd).update(g, optim.adam(lr).init(W), W)
    g2 = g + wd * W  # first Adam step: mu_hat = g, nu_hat = g * g
    np.testing.assert_allclose(l2, W - lr * g2 / (np.abs(g2) + eps), rtol=0, atol=1e-15)
    adamw, _ = optim.adam(lr, weight_decay=wd, decoupled=True).update(g, optim.adam(lr).init(W),
                                                                       W)
    np.testing.assert_allclose(adamw, W - lr * g / (np.abs(g) + eps) - lr * wd * W,
                               rtol=0, atol=1e-15)


@pytest.mark.parametrize("decoupled", [False, True])
def test_default_mask_decays_matrices_not_vectors(decoupled):
    params = {"W": np.array([[1.0, -2.0], [3.0, 4.0]]), "b": np.array([5.0, -6.0])}
    zeros = ftree.map(np.zeros_like, params)
    opt = optim.sgd(0.1, weight_decay=0.5, decoupled=decoupled)
    new, _ = opt.update(zeros, opt.init(params), params)
    np.testing.assert_allclose(new["W"], params["W"] * (1 - 0.1 * 0.5), rtol=0, atol=1e-15)
    assert np.array_equal(new["b"], params["b"])


def test_custom_mask_sees_paths():
    params = {"W": np.ones((2, 2)), "b": np.ones(2)}
    seen = []

    def only_b(path, leaf):
        seen.append(path)
        return path[-1] == "b"

    opt = optim.sgd(0.1, weight_decay=0.5, decay_mask=only_b)
    new, _ = opt.update(ftree.map(np.zeros_like, params), opt.init(params), params)
    assert seen == [("W",), ("b",)]
    assert np.array_equal(new["W"], params["W"])
    np.testing.assert_allclose(new["b"], 0.95 * params["b"], rtol=0, atol=1e-15)


def test_clipping_scales_the_global_norm_down_to_the_limit():
    params = {"a": np.zeros(2), "b": np.zeros((1, 1))}
    grads = {"a": np.array([6.0, 0.0]), "b": np.array([[8.0]])}  # global norm 10
    opt = optim.sgd(1.0, max_grad_norm=1.0)
    new, _ = opt.update(grads, opt.init(params), params)
    step = unpack(new)
    np.testing.assert_allclose(np.linalg.norm(step), 1.0, rtol=1e-15)
    np.testing.assert_allclose(step, -np.array([0.6, 0.0, 0.8]), rtol=1e-15)


def test_clipping_leaves_a_small_gradient_alone():
    params = {"a": np.array([1.0, 2.0]), "b": np.array([[3.0]])}
    grads = {"a": np.array([6.0, 0.0]), "b": np.array([[8.0]])}
    opt = optim.sgd(1.0, max_grad_norm=10.5)
    new, _ = opt.update(grads, opt.init(params), params)
    assert bitwise_equal(new, ftree.map(lambda w, g: w - g, params, grads))


# --- schedules -----------------------------------------------------------------------------


class ScheduleCase(NamedTuple):
    schedule: Callable
    formula: Callable[[int], float]


SCHEDULE_REGISTRY = {
    "constant": ScheduleCase(optim.constant(0.3), lambda s: 0.3),
    "step_decay": ScheduleCase(optim.step_decay(1.0, 0.5, 3),
                               lambda s: [1.0, 0.5, 0.25, 0.125][s // 3]),
    "exponential": ScheduleCase(optim.exponential(0.1, 0.5, 4),
                                lambda s: 0.1 * math.exp(math.log(0.5) * s / 4)),
    "cosine": ScheduleCase(optim.cosine(1.0, 10, 0.1),
                           lambda s: 0.1 + 0.9 * (math.cos(math.pi * min(s, 10) / 10) + 1) / 2),
}


def test_schedule_registry_covers_every_schedule():
    assert set(optim.SCHEDULES) == set(SCHEDULE_REGISTRY), "add the schedule to the registry"


@pytest.mark.parametrize("name", sorted(SCHEDULE_REGISTRY))
def test_schedule_values_equal_the_formula(name):
    schedule, formula = SCHEDULE_REGISTRY[name]
    for step in [0, 1, 2, 3, 4, 5, 8, 10, 11]:
        assert math.isclose(schedule(step), formula(step), rel_tol=1e-14), step
        assert isinstance(schedule(step), float)


def test_cosine_endpoints():
    s = optim.cosine(0.5, 4, final=0.1)
    assert s(0) == 0.5 and s(2) == pytest.approx(0.3, abs=1e-15) and s(4) == s(100) == 0.1


@pytest.mark.parametrize("name", NAMES)
def test_schedule_is_used_step_by_step(name):
    seen, rates = [], [0.1, 0.0, 0.05]

    def schedule(step):
        seen.append(step)
        return rates[step]

    w0 = np.array([0.5, -1.5, 2.0])
    got, _ = run(make(name, schedule), w0, parabola_grad, 3)
    assert seen == [0, 1, 2]
    want = REGISTRY[name].hand(w0, parabola_grad, 3, lr=rates.__getitem__)
    for g, h in zip(got, want, strict=True):
        np.testing.assert_allclose(g, h, rtol=0, atol=1e-12)


def test_sgd_schedule_by_hand():
    w0 = np.array([1.0, -2.0])
    sched = optim.step_decay(0.2, 0.5, 1)
    got, _ = run(optim.sgd(sched), w0, lambda w: 2 * w, 3)
    w, want = w0, []
    for step in range(3):
        w = w - 0.2 * 0.5**step * 2 * w
        want.append(w)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-15)


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", [-0.1, "0.1", float("nan"), True, None])
def test_bad_learning_rate(name, bad):
    with pytest.raises(ArgumentError, match=rf"^{name}: learning_rate must be a finite number "
                                            r">= 0 or a schedule .*, got "):
        make(name, bad)


@pytest.mark.parametrize("name", NAMES)
def test_bad_options(name):
    with pytest.raises(ArgumentError, match=rf"^{name}: weight_decay must be a finite number "
                                            r">= 0, got a float \(-0\.1\)"):
        make(name, weight_decay=-0.1)
    with pytest.raises(ArgumentError, match=rf"^{name}: decoupled must be True or False, got "
                                            r"an int \(1\)"):
        make(name, decoupled=1)
    with pytest.raises(ArgumentError, match=rf"^{name}: decay_mask must be a function "
                                            r"\(path, leaf\) -> bool or None, got a str"):
        make(name, decay_mask="W")
    for bad, got in [(0, r"an int \(0\)"), (-1.0, r"a float \(-1\.0\)"),
                     (float("inf"), r"a float \(inf\)")]:
        with pytest.raises(ArgumentError, match=rf"^{name}: max_grad_norm must be a finite "
                                                rf"number > 0, got {got}"):
            make(name, max_grad_norm=bad)
    with pytest.raises(TypeError, match="'wieght_decay'"):  # a misspelt option is refused
        make(name, wieght_decay=0.1)


@pytest.mark.parametrize(("make_bad", "message"), [
    (lambda: optim.momentum(0.1, 1.0), r"^momentum: momentum must be a number in \[0, 1\), "
                                       r"got 1\.0"),
    (lambda: optim.momentum(0.1, -0.1), r"^momentum: momentum must be a number in \[0, 1\)"),
    (lambda: optim.nesterov(0.1, 1.5), r"^nesterov: momentum must be a number in \[0, 1\), "
                                       r"got 1\.5"),
    (lambda: optim.rmsprop(0.1, decay=1.0), r"^rmsprop: decay must be a number in \[0, 1\)"),
    (lambda: optim.adam(0.1, b1=1.0), r"^adam: b1 must be a number in \[0, 1\), got 1\.0"),
    (lambda: optim.adam(0.1, b2=-0.5), r"^adam: b2 must be a number in \[0, 1\), got -0\.5"),
    (lambda: optim.adam(0.1, b1="0.9"), r"^adam: b1 must be a number in \[0, 1\), got '0\.9'"),
    (lambda: optim.adagrad(0.1, eps=0.0), r"^adagrad: eps must be a finite number > 0, got a "
                                          r"float \(0\.0\)"),
    (lambda: optim.rmsprop(0.1, eps=-1e-7), r"^rmsprop: eps must be a finite number > 0"),
    (lambda: optim.adam(0.1, eps=None), r"^adam: eps must be a finite number > 0, got None"),
])
def test_bad_hyperparameters(make_bad, message):
    with pytest.raises(ArgumentError, match=message):
        make_bad()


@pytest.mark.parametrize(("make_bad", "message"), [
    (lambda: optim.constant(-1.0), r"^constant: value must be a finite number >= 0, got a "
                                   r"float \(-1\.0\)"),
    (lambda: optim.step_decay(-1.0, 0.5, 2), r"^step_decay: initial must be a finite number "
                                             r">= 0"),
    (lambda: optim.step_decay(1.0, 1.5, 2), r"^step_decay: factor must be a number in \(0, 1\]"
                                            r", got a float \(1\.5\)"),
    (lambda: optim.step_decay(1.0, 0.0, 2), r"^step_decay: factor must be a number in \(0, 1\]"),
    (lambda: optim.step_decay(1.0, 0.5, 0), r"^step_decay: every must be a positive integer, "
                                            r"got 0"),
    (lambda: optim.step_decay(1.0, 0.5, 2.0), r"^step_decay: every must be a positive integer"),
    (lambda: optim.exponential(float("nan"), 0.5, 2), r"^exponential: initial must be a finite"),
    (lambda: optim.exponential(1.0, 2.0, 2), r"^exponential: decay_rate must be a number in "
                                             r"\(0, 1\]"),
    (lambda: optim.exponential(1.0, 0.5, 0), r"^exponential: decay_steps must be a finite "
                                             r"number > 0, got an int \(0\)"),
    (lambda: optim.cosine(1.0, 0), r"^cosine: total_steps must be a positive integer, got 0"),
    (lambda: optim.cosine(1.0, 10, final=-0.1), r"^cosine: final must be a finite number >= 0"),
    (lambda: optim.cosine("1", 10), r"^cosine: initial must be a finite number >= 0, got a str"),
])
def test_bad_schedule_arguments(make_bad, message):
    with pytest.raises(ArgumentError, match=message):
        make_bad()


@pytest.mark.parametrize("name", sorted(SCHEDULE_REGISTRY))
@pytest.mark.parametrize(("step", "got"), [(-1, r"an int \(-1\)"), (1.5, r"a float \(1\.5\)"),
                                           (True, r"a bool \(True\)")])
def test_schedule_refuses_a_bad_step(name, step, got):
    with pytest.raises(ArgumentError, match=rf"^{name}: step must be an integer >= 0, got {got}"):
        SCHEDULE_REGISTRY[name].schedule(step)


def test_schedules_take_numpy_integer_steps():
    s = optim.step_decay(1.0, 0.5, 2)
    assert s(np.int64(4)) == s(np.array(4)) == 0.25


@pytest.mark.parametrize(("rate", "got"), [(-0.5, r"a float \(-0\.5\)"),
                                           (float("nan"), r"a float \(nan\)"),
                                           (float("inf"), r"a float \(inf\)"),
                                           ("fast", r"a str \('fast'\)"),
                                           (np.array([0.1, 0.2]), r"an array of shape \(2,\)")])
def test_schedule_giving_a_bad_rate_names_the_step(rate, got):
    opt = optim.adam(lambda step: 0.1 if step < 2 else rate)
    w = np.ones(2)
    state = opt.init(w)
    for _ in range(2):
        w, state = opt.update(w, state, w)
    with pytest.raises(ArgumentError, match=rf"^adam: the learning_rate schedule gave {got}.* "
                                            r"at step 2; expected a finite number >= 0"):
        opt.update(w, state, w)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_grads_that_do_not_match_params(name, warm):
    """Cold, and warm: after a successful update (update keeps nothing between calls)."""
    params = {"W": np.ones((2, 2)), "b": np.ones(2)}
    opt = make(name)
    state = opt.init(params)
    if warm:
        opt.update(params, state, params)
    with pytest.raises(StructureError, match=rf"^{name}\.update: grads do not match the "
                                             r"structure of params at params: expected a dict "
                                             r"with keys \['W', 'b'\], got a dict with keys "
                                             r"\['W'\]"):
        opt.update({"W": np.ones((2, 2))}, state, params)
    with pytest.raises(ShapeError, match=rf"^{name}\.update: grads at params\['b'\] has shape "
                                         r"\(3,\), expected \(2,\)"):
        opt.update({"W": np.ones((2, 2)), "b": np.ones(3)}, state, params)
    with pytest.raises(ShapeError, match=rf"^{name}\.update: grads at params\['W'\] has dtype "
                                         r"float32, expected float64"):
        opt.update({"W": np.ones((2, 2), np.float32), "b": np.ones(2)}, state, params)
    with pytest.raises(ArrayTypeError, match=rf"^{name}\.update: grads at params\['b'\] must "
                                             r"be an array, got None"):
        opt.update({"W": np.ones((2, 2)), "b": None}, state, params)
    with pytest.raises(StructureError, match=rf"^{name}\.update: grads do not match the "
                                             r"structure of params at params\['b'\]: expected "
                                             r"an array of shape \(2,\)"):
        opt.update({"W": np.ones((2, 2)), "b": (np.ones(2),)}, state, params)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_params_must_be_float_arrays(name, warm):
    opt = make(name)
    for bad, got in [({"W": np.ones(2, np.int64)}, r"an array of shape \(2,\) and dtype int64"),
                     ({"W": 1.0}, r"a float \(1\.0\)"), ({"W": [1.0]}, r"a float \(1\.0\)")]:
        with pytest.raises(ArrayTypeError, match=rf"^{name}\.init: params at params\['W'\]"
                                                 rf"(\[0\])? must be a float array, got {got}"):
            opt.init(bad)
    good = {"W": np.ones(2)}
    if warm:
        opt.update(good, opt.init(good), good)
    with pytest.raises(ArrayTypeError, match=rf"^{name}\.update: params at params\['W'\] must "
                                             r"be a float array, got an array of shape \(2,\) "
                                             r"and dtype int64"):
        opt.update(good, opt.init(good), {"W": np.ones(2, np.int64)})


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_state_that_does_not_match(name, warm):
    params = {"W": np.ones((2, 2)), "b": np.ones(2)}
    opt = make(name)
    state = opt.init(params)
    if warm:
        opt.update(params, state, params)
    kind = REGISTRY[name].state.__name__
    other = optim.SgdState(state.count) if name != "sgd" else optim.MomentumState(state.count, {})
    with pytest.raises(StructureError, match=rf"^{name}\.update: expected state to be a {kind} "
                                             rf"\(made by {name}\.init\), got a "
                                             rf"{type(other).__name__}"):
        opt.update(params, other, params)
    with pytest.raises(ArrayTypeError, match=rf"^{name}\.update: expected state\.count to be a "
                                             r"0-d integer array, got an int \(0\)"):
        opt.update(params, state._replace(count=0), params)
    with pytest.raises(ArrayTypeError, match=r"state\.count .*got an array of shape \(\) and "
                                             r"dtype float64"):
        opt.update(params, state._replace(count=np.array(0.0)), params)
    with pytest.raises(ArrayTypeError, match=r"state\.count .*got an array of shape \(1,\) and "
                                             r"dtype int64"):
        opt.update(params, state._replace(count=np.zeros(1, np.int64)), params)
    if name == "sgd":
        return
    field = state._fields[1]
    with pytest.raises(StructureError, match=rf"^{name}\.update: state\.{field} do not match "
                                             r"the structure of params at params"):
        opt.update(params, state._replace(**{field: {"W": np.ones((2, 2))}}), params)
    with pytest.raises(ShapeError, match=rf"^{name}\.update: state\.{field} at params\['W'\] "
                                         r"has shape \(2, 3\), expected \(2, 2\)"):
        opt.update(params, state._replace(**{field: {"W": np.ones((2, 3)), "b": np.ones(2)}}),
                   params)
    small = opt.init(ftree.map(lambda x: x.astype(np.float32), params))
    with pytest.raises(ShapeError, match=rf"^{name}\.update: state\.{field} at params\['W'\] "
                                         r"has dtype float32, expected float64"):
        opt.update(params, state._replace(**{field: getattr(small, field)}), params)


def test_decay_mask_must_answer_a_bool():
    params = {"W": np.ones((2, 2))}
    opt = optim.sgd(0.1, weight_decay=0.1, decay_mask=lambda path, leaf: "yes")
    with pytest.raises(ArgumentError, match=r"^sgd: decay_mask must return True or False, got "
                                            r"a str \('yes'\) for params\['W'\]"):
        opt.update(params, opt.init(params), params)


# --- the jit path --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_update_under_jax_jit_matches_numpy(name):
    jax = pytest.importorskip("jax")
    params, grads = shaped("nested")
    opt = make(name, optim.cosine(0.1, 4), weight_decay=0.05, decoupled=name == "adam",
               max_grad_norm=1.0)
    with jax.enable_x64(True):
        update = jax.jit(opt.update)
        state_np = state_jx = opt.init(params)
        params_np = params_jx = params
        for _ in range(3):
            params_np, state_np = opt.update(grads, state_np, params_np)
            params_jx, state_jx = update(grads, state_jx, params_jx)
        assert not isinstance(ftree.leaves(params_jx)[0], np.ndarray)  # it really ran in jax
        ftree.assert_same_structure(params_np, params_jx, who="test")
        for a, b in zip(ftree.leaves((params_np, state_np)), ftree.leaves((params_jx, state_jx)),
                        strict=True):
            np.testing.assert_allclose(np.asarray(b), a, rtol=0, atol=1e-6)
            assert np.asarray(b).dtype == a.dtype


# --- update keeps nothing between calls -------------------------------------------------


def _two_layouts():
    a = ({"W": np.full((2, 3), 0.5), "b": np.full(3, -0.25)}, (), {"W": np.full((3, 1), 2.0)})
    b = {"layers": [{"W": np.full((4,), 1.5)}], "scale": np.full((2, 2), -1.0)}
    return a, b


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("options", [{}, {"weight_decay": 0.1}, {"max_grad_norm": 0.5}])
def test_a_warm_optimizer_gives_what_a_fresh_one_gives(name, options):
    """One optimizer moving between two structures, and through shapes that change under one
    structure (the default decay mask reads ndim), agrees bitwise with a fresh optimizer per
    call."""
    shared = make(name, **options)
    a, b = _two_layouts()
    reshaped = ({"W": np.full((6,), 0.5), "b": np.full(3, -0.25)}, (), {"W": np.full((3, 1), 2.0)})
    states = {id(t): shared.init(t) for t in (a, b, reshaped)}
    for t in (a, a, b, a, reshaped, a, b, b):
        grads = ftree.map(lambda w: 0.3 * w + 0.1, t)
        fresh = make(name, **options)
        expected = fresh.update(grads, states[id(t)], t)
        got = shared.update(grads, states[id(t)], t)
        assert_bitwise_equal(expected, got, f"{name} update")
        states[id(t)] = got[1]


@pytest.mark.parametrize("name", NAMES)
def test_a_warm_optimizer_takes_jax_arrays(name, jax):
    """After numpy params, jax arrays of another structure."""
    opt = make(name)
    a, b = _two_layouts()
    opt.update(a, opt.init(a), a)
    b_jax = ftree.map(jax.numpy.asarray, b)
    new, _ = opt.update(b_jax, opt.init(b), b_jax)
    assert ftree.structure(new) == ftree.structure(b)
    expected, _ = make(name).update(b, make(name).init(b), b)
    assert_trees_close(ftree.map(np.asarray, new), expected, rtol=1e-6, atol=0)


# --- what update returns ---------------------------------------------------------------


def test_sgd_is_exactly_W_minus_lr_g():
    params, grads = shaped("nested")
    new, _ = optim.sgd(0.3).update(grads, optim.sgd(0.3).init(params), params)
    assert bitwise_equal(new, ftree.map(lambda W, g: W - 0.3 * g, params, grads))


@pytest.mark.parametrize("name", NAMES)
def test_update_returns_fresh_arrays_and_sets_no_attributes(name):
    """Nothing returned shares memory with grads, state or params, and the optimizer's
    protocol is its NamedTuple: no marks are set on its functions."""
    params, grads = shaped("nested")
    opt = make(name, weight_decay=0.1, max_grad_norm=0.5)
    state = opt.init(params)
    new, new_state = opt.update(grads, state, params)
    given = ftree.leaves((grads, state, params))
    for leaf in ftree.leaves((new, new_state)):
        assert not any(np.shares_memory(leaf, x) for x in given)
    assert not vars(opt.init) and not vars(opt.update)


# --- the kernel: update without its checks ------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("options", [{}, {"weight_decay": 0.1, "decoupled": True},
                                     {"max_grad_norm": 0.5}])
def test_the_kernel_computes_what_update_computes(name, options):
    """optim.math_of(opt) is update's math: bitwise the same numbers, three steps on, on
    params of two float dtypes; update alone checks, casts and seals."""
    opt = make(name, **options)
    kernel = optim.math_of(opt)
    assert kernel is opt.kernel.update and kernel is not opt.update
    for params in (_two_layouts()[0], ftree.map(np.float32, _two_layouts()[0])):
        checked = unchecked = (params, opt.init(params))
        for _ in range(3):
            grads = ftree.map(lambda w: 0.3 * w + 0.1, checked[0])
            checked = opt.update(grads, checked[1], checked[0])
            unchecked = kernel(grads, unchecked[1], unchecked[0])
            assert_bitwise_equal(checked, unchecked, f"{name} kernel")
        assert ftree.is_frozen(checked) and not ftree.is_frozen(unchecked)
    with pytest.raises(ShapeError, match=rf"{name}.update: grads at params\[0\]\['W'\] has shape"):
        opt.update(ftree.map(lambda w: w[None], params), opt.init(params), params)


def test_math_of_runs_a_replaced_update():
    """The kernel stands in for update only while update is the optimizer's own."""
    sgd = optim.sgd(0.1)

    def update(grads, state, params):
        return sgd.update(grads, state, params)

    assert optim.math_of(sgd._replace(update=update)) is update
    assert optim.math_of(optim.Optimizer(sgd.init, update)) is update
