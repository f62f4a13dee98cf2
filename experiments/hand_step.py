"""Note 003: one hand-computed training step of a 3 -> 2 -> 2 sigmoid network, redone by funcnet.

Reproduces every number of note 003 (SEEDS.md): input [1, 2, 3], target
[0.5, 0.1], the note's two weight matrices, one scalar bias per layer (0.5,
then 0.3, added to every unit; funcnet's per-unit bias holds it twice),
sigmoid on both layers, loss ½·Σ(y - t)², one SGD step at learning rate 1.
The backward pass is run one layer at a time so that the deltas can be shown.

The note's two mistakes, shown next to the correct values:
- its bias step is Σ(delta x bias); the gradient of the loss with respect to a
  bias added to every unit is Σ delta, and the bias's own value is not in it;
- its delta loop multiplies by the same (last) weight matrix at every layer,
  which is the right matrix only in a two-layer network.

    python experiments/hand_step.py [--seed N] [--out DIR] [--quick]
"""

import _common
import numpy as np

from funcnet import check, layers, losses, optim, plot, tree

X = np.array([[1.0, 2.0, 3.0]])  # one sample, as a row
TARGET = np.array([[0.5, 0.1]])
W1 = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])
W2 = np.array([[0.7, 0.8], [0.9, 0.1]])
B1, B2 = 0.5, 0.3  # one number per layer, added to every unit
LEARNING_RATE = 1.0
W_MIDDLE = np.array([[0.2, -0.3], [0.4, 0.1]])  # an extra layer, only for the second bug

NOTE = {  # the note's printed values (8 decimals)
    "hidden_output": [0.93702664, 0.96442881],
    "prediction": [0.86103399, 0.75879129],
    "per_output_cost": [0.06517277, 0.21700298],
    "output_delta": [0.04319933, 0.12057664],
    "hidden_delta": [0.00747633, 0.00174744],
    "dW2": [[0.04047892, 0.11298352], [0.04166268, 0.11628758]],
    "dW1": [[0.00747633, 0.00174744], [0.01495265, 0.00349488], [0.02242898, 0.00524232]],
    "updated_W1": [[0.09252367, 0.19825256], [0.28504735, 0.39650512],
                   [0.47757102, 0.59475768]],
    "updated_W2": [[0.65952108, 0.68701648], [0.85833732, -0.01628758]],
    "db1": 0.00922377,
    "db2": 0.16377596,
}
NOTE_BIAS_RULE = {"db1": 0.00461188, "db2": 0.04913279}  # Σ(delta x bias): wrong

WHY_BIAS = """\
Why Σ(delta x bias) is wrong: z_j = Σ_i W_ij h_i + b for every unit j, so dz_j/db = 1
and dL/db = Σ_j dL/dz_j · 1 = Σ_j delta_j. The bias's value never enters its own
gradient (a weight's gradient is delta times its INPUT, and a bias's input is 1).
The note's rule gives Σ delta x b, i.e. the right value scaled by b itself
(0.5 and 0.3 here), and its updated biases 0.49538812 and 0.25086721 are off."""

WHY_DELTAS = """\
The note's delta loop multiplies every layer's delta by w[0] of the reversed list,
the LAST weight matrix. Going back one layer needs the matrix of the layer just
passed: with two layers that is the last one, so note 003's numbers are right, but
with three or more every delta before the last hidden layer is wrong. funcnet's
backward reads each layer's own W from that layer's cache."""


def network(*hidden_matrices):
    """Dense + sigmoid per matrix, each dense with a bias of 2 units."""
    stack = []
    for _ in hidden_matrices:
        stack += [layers.dense(2), layers.sigmoid()]
    return layers.serial(*stack)


def note_params(matrices, biases):
    """Params for ``network``: each scalar bias broadcast to the layer's two units."""
    pairs = [({"W": W, "b": np.full(W.shape[1], b)}, ()) for W, b in zip(matrices, biases,
                                                                        strict=True)]
    return tree.freeze(tuple(p for pair in pairs for p in pair))


def one_step():
    """Forward, backward layer by layer, and the SGD update, with every number named."""
    net, loss = network(W1, W2), losses.sum_of_squares()
    dense1, sigmoid1, dense2, sigmoid2 = (layers.dense(2), layers.sigmoid(), layers.dense(2),
                                          layers.sigmoid())
    params = note_params((W1, W2), (B1, B2))
    prediction, cache = net.forward(params, X)
    value, loss_cache = loss.forward(prediction, TARGET)
    dprediction = loss.backward(loss_cache)
    # The chain, one layer at a time (the serial's caches are the layers' own).
    output_delta, _ = sigmoid2.backward(cache.caches[3], dprediction)
    dhidden, grads2 = dense2.backward(cache.caches[2], output_delta)
    hidden_delta, _ = sigmoid1.backward(cache.caches[1], dhidden)
    _, grads1 = dense1.backward(cache.caches[0], hidden_delta)
    _, grads = net.backward(cache, dprediction)
    optimizer = optim.sgd(LEARNING_RATE)
    updated, _ = optimizer.update(grads, optimizer.init(params), params)
    db1, db2 = float(grads1["b"].sum()), float(grads2["b"].sum())
    return {
        "hidden_output": cache.caches[2].x[0],
        "prediction": prediction[0],
        "per_output_cost": 0.5 * loss_cache.diff[0] ** 2,
        "loss": float(value),
        "output_delta": output_delta[0],
        "hidden_delta": hidden_delta[0],
        "dW2": grads2["W"],
        "dW1": grads1["W"],
        "updated_W1": updated[0]["W"],
        "updated_W2": updated[2]["W"],
        "db1": db1,
        "db2": db2,
        "updated_b1": B1 - LEARNING_RATE * db1,
        "updated_b2": B2 - LEARNING_RATE * db2,
        "serial_backward_matches": bool(
            all(np.array_equal(a, b) for a, b in zip(tree.leaves(grads),
                                                     tree.leaves((grads1, (), grads2, ())),
                                                     strict=True))),
    }


def scalar_bias_gradients_numerically():
    """dL/dB1 and dL/dB2 by central differences, moving each scalar bias on both units."""
    net, loss = network(W1, W2), losses.sum_of_squares()

    def total(biases):
        params = note_params((W1, W2), (biases["b1"], biases["b2"]))
        return loss.forward(net.forward(params, X)[0], TARGET)[0]

    numeric = check.numerical_gradient(total, {"b1": np.array(B1), "b2": np.array(B2)})
    return float(numeric["b1"]), float(numeric["b2"])


def three_layer_deltas():
    """The first hidden delta of a 3 -> 2 -> 2 -> 2 net: chain rule vs the note's loop."""
    net, loss = network(W1, W_MIDDLE, W2), losses.sum_of_squares()
    params = note_params((W1, W_MIDDLE, W2), (B1, B1, B2))
    prediction, cache = net.forward(params, X)
    _, loss_cache = loss.forward(prediction, TARGET)
    _, grads = net.backward(cache, loss.backward(loss_cache))
    middle_delta = grads[2]["b"]  # with one sample a layer's delta is its bias gradient
    first_hidden = cache.caches[2].x[0]
    note_rule = (W2 @ middle_delta) * first_hidden * (1 - first_hidden)  # W2 where W_MIDDLE belongs
    return grads[0]["b"], note_rule


def main(argv=None):
    args = _common.parse_args("hand_step", __doc__, argv)
    say, compare = _common.say, _common.compare
    step = one_step()
    for name, note in NOTE.items():
        say(compare(name, step[name], note))
    say(f"loss ½·Σ(y - t)² = {step['loss']:.8f}; serial backward equals the layer-by-layer "
        f"chain: {step['serial_backward_matches']}")
    say(f"updated scalar biases (B - lr Σ delta): {step['updated_b1']:.8f}, "
        f"{step['updated_b2']:.8f}   (note: 0.49538812, 0.25086721, from its wrong rule)")

    numeric_db1, numeric_db2 = scalar_bias_gradients_numerically()
    bias_rule = {"db1": step["db1"] * B1, "db2": step["db2"] * B2}
    for name, numeric in (("db1", numeric_db1), ("db2", numeric_db2)):
        say(f"{name}: correct Σ delta {step[name]:.8f}; central difference {numeric:.8f}; "
            f"the note's Σ(delta x bias) {bias_rule[name]:.8f} "
            f"(note printed {NOTE_BIAS_RULE[name]:.8f}) -- WRONG")
    say(WHY_BIAS)
    chain_rule, note_rule = three_layer_deltas()
    def fixed(a):
        return np.array2string(a, precision=8, floatmode="fixed")

    say(f"3 -> 2 -> 2 -> 2 net, first hidden delta: chain rule {fixed(chain_rule)}, "
        f"the note's loop {fixed(note_rule)}")
    say(WHY_DELTAS)

    plot.save(plot.bar_chart({"layer 1": {"Σ delta (correct)": step["db1"],
                                          "central difference": numeric_db1,
                                          "Σ delta x bias (note)": bias_rule["db1"]},
                              "layer 2": {"Σ delta (correct)": step["db2"],
                                          "central difference": numeric_db2,
                                          "Σ delta x bias (note)": bias_rule["db2"]}},
                             ylabel="dL/d(scalar bias)", xlabel="layer",
                             title="note 003: the bias gradient"),
              args.out / "bias_gradient.png")
    # the note prints 8 decimals: a match is agreement to within that rounding
    matches = {name: bool(np.allclose(step[name], note, rtol=0, atol=1e-8))
               for name, note in NOTE.items()}
    say(f"every number of the note matches to 8 decimals: {all(matches.values())}")
    metrics = {**step, "matches": matches,
               "db1_numerical": numeric_db1, "db2_numerical": numeric_db2,
               "db1_note_rule": bias_rule["db1"], "db2_note_rule": bias_rule["db2"],
               "three_layer_first_delta": chain_rule,
               "three_layer_first_delta_note_rule": note_rule}
    config = {"x": X, "target": TARGET, "W1": W1, "W2": W2, "b1": B1, "b2": B2,
              "learning_rate": LEARNING_RATE, "quick": args.quick}
    _common.write_metrics(args.out, "hand_step", config=config, seed=args.seed, metrics=metrics)
    return metrics


if __name__ == "__main__":
    main()
