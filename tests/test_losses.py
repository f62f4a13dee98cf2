"""The laws every loss obeys, over the registry, and the promises of each one.

For each registry case: dpred equals jax.grad of the SAME forward (float64,
rel. error < 1e-7) and central differences (< 1e-6); float32 stays float32;
pred and target are not touched. Then each documented reduction against a
formula written here in plain numpy, the label/one-hot equivalence, the fused
losses against their two-step versions, stability on logits of +-1000, and
every bad-input message.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from helpers import assert_bitwise_equal, defined_functions, snapshot
from hypothesis import given, settings
from hypothesis import strategies as st
from registry import LOSS_CASES

from funcnet import layers as L
from funcnet import losses
from funcnet.check import check_loss
from funcnet.errors import ArrayTypeError, ShapeError

CASES = sorted(LOSS_CASES)
BATCH = st.integers(1, 5)
WIDTH = st.integers(1, 5)
SEED = st.integers(0, 2**16)
GUARD = 1e-7  # the notes' guard inside log(p + 1e-7), restated here on purpose


def _make(case, batch, width, seed, dtype=np.float64):
    _, loss_case = LOSS_CASES[case]
    pred, target = loss_case.make(np.random.default_rng(seed), batch, width, dtype)
    return loss_case.loss, pred, target


def test_registry_covers_every_loss():
    covered = {constructor for constructor, _ in LOSS_CASES.values()}
    missing = set(losses.CONSTRUCTORS) - covered
    assert not missing, f"losses without a registry case: {sorted(missing)}"
    public = {n for n in losses.__all__ if n.islower() and callable(getattr(losses, n))}
    helpers = {"math_of"}  # the protocol's own helper, not a loss
    assert public - helpers <= set(losses.CONSTRUCTORS), public - set(losses.CONSTRUCTORS)
    unlisted = defined_functions(losses) - helpers - set(losses.CONSTRUCTORS)
    assert not unlisted, f"not in CONSTRUCTORS: {sorted(unlisted)}"


@pytest.mark.parametrize("case", CASES)
@settings(max_examples=10)  # jax compiles once per call: a few examples keep this quick
@given(batch=BATCH, width=WIDTH, seed=SEED)
def test_dpred_matches_jax_and_finite_differences(case, batch, width, seed, jax):
    loss, pred, target = _make(case, batch, width, seed)
    report = check_loss(loss, pred, target)
    (leaf,) = report.leaves
    assert leaf.path == "pred"
    assert leaf.error_jax < 1e-7, str(report)
    assert leaf.error_numerical < 1e-6, str(report)
    assert report.ok and report.kinks == 0, str(report)


@pytest.mark.parametrize("case", CASES)
@given(batch=BATCH, width=WIDTH, seed=SEED)
def test_float32_in_float32_out_and_nothing_mutated(case, batch, width, seed):
    loss, pred, target = _make(case, batch, width, seed, dtype=np.float32)
    before = snapshot((pred, target))
    value, cache = loss.forward(pred, target)
    dpred = loss.backward(cache)
    assert np.result_type(value) == np.float32
    assert dpred.dtype == np.float32 and dpred.shape == pred.shape
    assert_bitwise_equal(before, (pred, target), "(pred, target)")
    assert np.isfinite(value) and np.isfinite(dpred).all()


# --- reductions, against formulas written out here -----------------------------------------


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _one_hot(target, width):
    return np.eye(width)[target] if target.ndim == 1 else target


def _reference(name, pred, target):
    """Each documented reduction, independently: per-sample sums, then sum or batch mean."""
    batch = pred.shape[0]
    if name == "sum_of_squares":
        return 0.5 * np.sum((pred - target) ** 2)
    if name == "mse":
        return np.sum((pred - target) ** 2, axis=1).mean()
    if name == "cross_entropy":
        t = _one_hot(target, pred.shape[1])
        return np.mean([-np.sum(t[i] * np.log(pred[i] + GUARD)) for i in range(batch)])
    if name == "binary_cross_entropy":
        per = -(target * np.log(pred) + (1 - target) * np.log(1 - pred))
        return per.sum(axis=1).mean()
    if name == "softmax_cross_entropy":
        t = _one_hot(target, pred.shape[1])
        return np.mean([-np.sum(t[i] * np.log(_softmax(pred[i:i + 1])[0]))
                        for i in range(batch)])
    if name == "sigmoid_binary_cross_entropy":
        p = 1 / (1 + np.exp(-pred))
        return (-(target * np.log(p) + (1 - target) * np.log(1 - p))).sum(axis=1).mean()
    raise AssertionError(f"no reference formula for {name}")


@pytest.mark.parametrize("case", CASES)
@given(batch=BATCH, width=WIDTH, seed=SEED)
def test_value_matches_the_documented_reduction(case, batch, width, seed):
    name, _ = LOSS_CASES[case]
    loss, pred, target = _make(case, batch, width, seed)
    value, _ = loss.forward(pred, target)
    np.testing.assert_allclose(value, _reference(name, pred, target), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("case", CASES)
@given(batch=BATCH, width=WIDTH, seed=SEED)
def test_repeating_the_batch_keeps_a_mean_and_doubles_a_sum(case, batch, width, seed):
    name, _ = LOSS_CASES[case]
    loss, pred, target = _make(case, batch, width, seed)
    value, cache = loss.forward(pred, target)
    dpred = loss.backward(cache)
    value2, cache2 = loss.forward(np.concatenate([pred, pred]), np.concatenate([target, target]))
    dpred2 = loss.backward(cache2)
    if name == "sum_of_squares":
        np.testing.assert_allclose(value2, 2 * value, rtol=1e-13)
        np.testing.assert_allclose(dpred2, np.concatenate([dpred, dpred]), rtol=1e-13)
    else:  # a batch mean: same value, and each row's gradient is halved (1 / batch)
        np.testing.assert_allclose(value2, value, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(dpred2, np.concatenate([dpred, dpred]) / 2, rtol=1e-13)


def test_mse_of_one_output_is_the_mean_squared_error():
    pred, target = np.array([[1.0], [2.0], [4.0]]), np.array([[0.0], [0.0], [1.0]])
    value, cache = losses.mse().forward(pred, target)
    assert value == pytest.approx((1 + 4 + 9) / 3)
    np.testing.assert_allclose(losses.mse().backward(cache), 2 * (pred - target) / 3)


def test_sum_of_squares_gradient_is_the_difference():
    pred, target = np.array([[0.5, -1.0], [2.0, 0.0]]), np.array([[0.0, 1.0], [1.0, 1.0]])
    value, cache = losses.sum_of_squares().forward(pred, target)
    assert value == pytest.approx(0.5 * (0.25 + 4 + 1 + 1))
    np.testing.assert_array_equal(losses.sum_of_squares().backward(cache), pred - target)


# --- labels, and the fused losses against their two-step versions --------------------------


@pytest.mark.parametrize("make_loss", [losses.cross_entropy, losses.softmax_cross_entropy])
@given(batch=BATCH, width=WIDTH, seed=SEED)
def test_one_hot_and_integer_labels_agree(make_loss, batch, width, seed):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((batch, width))
    pred = _softmax(logits) if make_loss is losses.cross_entropy else logits
    labels = rng.integers(0, width, batch)
    loss = make_loss()
    v_labels, c_labels = loss.forward(pred, labels)
    v_hot, c_hot = loss.forward(pred, np.eye(width)[labels])
    assert v_labels == v_hot
    np.testing.assert_array_equal(loss.backward(c_labels), loss.backward(c_hot))


@given(batch=BATCH, width=WIDTH, seed=SEED)
def test_softmax_cross_entropy_is_cross_entropy_of_softmax_up_to_the_guard(batch, width, seed):
    rng = np.random.default_rng(seed)
    z = 2 * rng.standard_normal((batch, width))
    labels = rng.integers(0, width, batch)
    fused, fused_cache = losses.softmax_cross_entropy().forward(z, labels)

    softmax = L.softmax()
    p, s_cache = softmax.forward((), z)
    two_step, ce_cache = losses.cross_entropy().forward(p, labels)
    dz_two_step, _ = softmax.backward(s_cache, losses.cross_entropy().backward(ce_cache))

    # log(p + g) - log(p) lies in [0, g / p]: the guard can only lower the two-step value
    p_label = p[np.arange(batch), labels]
    bound = np.mean(GUARD / p_label)
    assert 0 <= fused - two_step <= bound + 1e-12
    np.testing.assert_allclose(losses.softmax_cross_entropy().backward(fused_cache),
                               dz_two_step, rtol=0, atol=2 * bound + 1e-12)


@given(batch=BATCH, width=WIDTH, seed=SEED)
def test_sigmoid_bce_is_bce_of_sigmoid_on_moderate_logits(batch, width, seed):
    rng = np.random.default_rng(seed)
    z = rng.uniform(-5, 5, (batch, width))  # sigmoid stays inside [1e-7, 1 - 1e-7]: no clip
    t = rng.uniform(0, 1, (batch, width))
    fused, fused_cache = losses.sigmoid_binary_cross_entropy().forward(z, t)

    sigmoid = L.sigmoid()
    p, s_cache = sigmoid.forward((), z)
    two_step, bce_cache = losses.binary_cross_entropy().forward(p, t)
    dz_two_step, _ = sigmoid.backward(s_cache, losses.binary_cross_entropy().backward(bce_cache))

    np.testing.assert_allclose(fused, two_step, rtol=1e-10)
    np.testing.assert_allclose(losses.sigmoid_binary_cross_entropy().backward(fused_cache),
                               dz_two_step, rtol=1e-8, atol=1e-15)


# --- stability on huge logits ----------------------------------------------------------------


@pytest.fixture
def strict():
    """Floating-point errors raise (conftest sets that) and so does every warning."""
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_cross_entropy_on_huge_logits_is_exact(strict, dtype):
    z = np.array([[1000, -1000], [-1000, 1000]], dtype=dtype)
    loss = losses.softmax_cross_entropy()

    right, cache = loss.forward(z, np.array([0, 1]))  # each label on its row's maximum
    assert right == 0.0 and np.result_type(right) == dtype
    dz = loss.backward(cache)  # softmax of -2000 is exp(-2000) = 0 up to rounding
    assert dz.dtype == dtype and np.isfinite(dz).all()
    np.testing.assert_allclose(dz, np.zeros((2, 2)), rtol=0, atol=np.finfo(dtype).eps)

    wrong, cache = loss.forward(z, np.array([1, 0]))  # each label 2000 below the maximum
    assert wrong == 2000.0 and np.result_type(wrong) == dtype
    dz = loss.backward(cache)
    assert dz.dtype == dtype and np.isfinite(dz).all()
    np.testing.assert_allclose(dz, np.array([[1.0, -1.0], [-1.0, 1.0]]) / 2, rtol=0,
                               atol=np.finfo(dtype).eps)

    one_hot, _ = loss.forward(z, np.array([[0, 1], [1, 0]], dtype=dtype))
    assert one_hot == 2000.0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sigmoid_layer_on_huge_inputs_is_finite(strict, dtype):
    layer = L.sigmoid()
    y, cache = layer.forward((), np.array([[-1000.0, 1000.0]], dtype=dtype))
    assert y.dtype == dtype
    assert 0.0 <= y[0, 0] < np.finfo(dtype).eps  # 0 to within rounding, no overflow
    assert y[0, 1] == 1.0
    dx, _ = layer.backward(cache, np.ones((1, 2), dtype))
    assert dx.dtype == dtype and np.isfinite(dx).all()
    assert 0.0 <= dx[0, 0] < np.finfo(dtype).eps and dx[0, 1] == 0.0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sigmoid_bce_on_huge_logits_is_finite_and_correct(strict, dtype):
    loss = losses.sigmoid_binary_cross_entropy()
    z = np.array([[1000.0, -1000.0, 1000.0, -1000.0]], dtype=dtype)
    t = np.array([[1.0, 0.0, 0.0, 1.0]], dtype=dtype)
    value, cache = loss.forward(z, t)
    # right answers cost ~0; the two confident wrong answers cost |z| = 1000 each
    assert np.result_type(value) == dtype
    assert value == pytest.approx(2000.0, rel=1e-6)
    dz = loss.backward(cache)
    assert dz.dtype == dtype
    np.testing.assert_allclose(dz, [[0.0, 0.0, 1.0, -1.0]], atol=np.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bce_on_saturated_probabilities_is_finite_and_flat_where_clipped(strict, dtype):
    """Predictions of exactly 0 or 1 (and beyond the guard) are clipped to [1e-7, 1 - 1e-7]:
    the loss is large and finite, and its gradient there is 0, the slope of the clipped
    function, whichever the target; inside the guard it is (p - t) / (p (1 - p)) / batch."""
    loss = losses.binary_cross_entropy()
    pred = np.array([[0.0, 1.0, 1e-12, 0.3], [1.0, 0.0, 1 - 1e-12, 0.6]], dtype=dtype)
    target = np.array([[0.0, 1.0, 1.0, 1.0], [0.0, 1.0, 1.0, 0.0]], dtype=dtype)
    value, cache = loss.forward(pred, target)
    p = np.clip(pred, GUARD, 1 - GUARD).astype(np.float64)  # clipped in pred's own dtype
    expected = -(target * np.log(p) + (1 - target) * np.log(1 - p)).sum(axis=1).mean()
    assert np.isfinite(value)
    np.testing.assert_allclose(value, expected, rtol=1e-12 if dtype == np.float64 else 1e-5)
    dpred = loss.backward(cache)
    inside = np.array([[False, False, False, True], [False, False, False, True]])
    np.testing.assert_array_equal(dpred[~inside], 0.0)
    q, t = pred[inside], target[inside]
    np.testing.assert_allclose(dpred[inside], (q - t) / (q * (1 - q)) / 2,
                               rtol=1e-12 if dtype == np.float64 else 1e-5)


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(losses.CONSTRUCTORS))
def test_pred_must_be_an_array(name):
    with pytest.raises(ArrayTypeError, match=rf"{name}: expected pred to be an array.*a list"):
        losses.CONSTRUCTORS[name]().forward([[0.5, 0.5]], np.array([[0.0, 1.0]]))


@pytest.mark.parametrize("name", sorted(losses.CONSTRUCTORS))
def test_integer_pred_is_refused(name):
    with pytest.raises(ArrayTypeError, match=rf"{name}: expected pred of a float dtype, "
                                             r"got int64"):
        losses.CONSTRUCTORS[name]().forward(np.array([[0, 1]]), np.array([[0.0, 1.0]]))


@pytest.mark.parametrize("name", sorted(losses.CONSTRUCTORS))
def test_target_shape_must_match(name):
    pred = np.full((2, 3), 0.3)
    with pytest.raises(ShapeError, match=rf"{name}: target shape \(2, 2\) does not match "
                                         r"pred shape \(2, 3\)"):
        losses.CONSTRUCTORS[name]().forward(pred, np.zeros((2, 2)))


@pytest.mark.parametrize("name", ["sum_of_squares", "mse", "binary_cross_entropy"])
def test_target_must_be_an_array(name):
    with pytest.raises(ArrayTypeError, match=rf"{name}: expected target to be an array of "
                                             r"shape \(1, 2\), got a float"):
        losses.CONSTRUCTORS[name]().forward(np.array([[0.5, 0.5]]), 1.0)


CLASS_LOSSES = ["cross_entropy", "softmax_cross_entropy"]


@pytest.mark.parametrize("name", CLASS_LOSSES)
@pytest.mark.parametrize("labels", [[0, 3], [-1, 0]])
def test_labels_out_of_range(name, labels):
    with pytest.raises(ShapeError, match=rf"{name}: labels must lie in \[0, 3\)"):
        losses.CONSTRUCTORS[name]().forward(np.full((2, 3), 1 / 3), np.array(labels))


@pytest.mark.parametrize("name", CLASS_LOSSES)
def test_wrong_number_of_labels(name):
    with pytest.raises(ShapeError, match=rf"{name}: got 3 labels for a batch of 2"):
        losses.CONSTRUCTORS[name]().forward(np.full((2, 3), 1 / 3), np.array([0, 1, 2]))


@pytest.mark.parametrize("name", CLASS_LOSSES)
@pytest.mark.parametrize("shape", [(6,), (2, 3, 1)])
def test_class_losses_need_2d_pred(name, shape):
    with pytest.raises(ShapeError, match=rf"{name}: expected pred of shape \(batch, classes\), "
                                         rf"got shape \({shape[0]},"):
        losses.CONSTRUCTORS[name]().forward(np.full(shape, 0.5), np.zeros(shape[0], int))


@pytest.mark.parametrize("name", sorted(losses.CONSTRUCTORS))
def test_empty_batch_is_refused(name):
    with pytest.raises(ShapeError, match=rf"{name}: expected pred with a non-empty batch axis"):
        losses.CONSTRUCTORS[name]().forward(np.zeros((0, 2)), np.zeros((0, 2)))


def test_sigmoid_bce_gradient_at_a_logit_of_exactly_zero_matches_jax(jax):
    """XOR's (0, 0) row with zero biases gives a logit of exactly 0: a corner of max and abs."""
    from funcnet.check import check_loss

    report = check_loss(losses.sigmoid_binary_cross_entropy(),
                        np.array([[0.0], [0.0], [1.5]]), np.array([[0.0], [1.0], [1.0]]))
    assert report.ok and report.leaves[0].error_jax < 1e-12, str(report)
