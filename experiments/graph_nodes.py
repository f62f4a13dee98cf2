"""Note 001: the computational graph node by node, then a gradient check of four layers.

Reproduces note 001 (SEEDS.md). First the textbook's shopping graphs built from
``layers.mul()`` and ``layers.add()`` nodes, forward then backward from 1:
apples 100 x 2 x tax 1.1 = 220 (gradients 2.2, 110, 200), and apples plus
oranges (100 x 2 + 150 x 3) x 1.1 = 715 (gradients apple 2.2, apple count
110, orange 3.3, orange count 165, tax 650), drawn with each edge's value
above it and its gradient below. Then the note's layers, ReLU, Sigmoid,
Affine (``dense``) and Softmax-with-loss (``softmax_cross_entropy``), are
checked on small random inputs against ``jax.grad`` and against central
differences.

    python experiments/graph_nodes.py [--seed N] [--out DIR] [--quick]
"""

import _common
import numpy as np

from funcnet import check, layers, losses, plot, random

APPLE, APPLE_COUNT = 100, 2
ORANGE, ORANGE_COUNT = 150, 3
TAX = 1.1
NOTE_APPLE = {"price": 220, "d_apple": 2.2, "d_apple_count": 110, "d_tax": 200}
NOTE_APPLE_ORANGE = {"price": 715, "d_apple": 2.2, "d_apple_count": 110, "d_orange": 3.3,
                     "d_orange_count": 165, "d_tax": 650}
BATCH, FEATURES, UNITS = 4, 3, 5  # the gradient check's inputs
QUICK_BATCH = 2

BUGS = """\
Where note 001's layers go wrong (funcnet's do not):
- ReLU backward: the note writes dout[self.mask] = 0 and returns dout, so it zeroes
  the caller's incoming gradient in place (any other user of that array sees it
  changed). funcnet's relu backward returns a new array, xp.where(mask, dy, 0);
  above, dy was bitwise unchanged after the call.
- SoftmaxWithLoss forward: the note sets self.y = y (a name from outside), never
  softmax(x), so its loss and its backward (y - t) / batch use some other y.
  funcnet's softmax_cross_entropy computes softmax of the logits it is given (with
  the row maximum shifted out); above, its value equals -log softmax(z)[label]."""


def apple_graph():
    """Apples x count x tax: forward, then backward from d price = 1."""
    mul_apple, mul_tax = layers.mul(), layers.mul()
    apple_price, apple_cache = mul_apple.forward((), (APPLE, APPLE_COUNT))
    price, tax_cache = mul_tax.forward((), (apple_price, TAX))
    (d_apple_price, d_tax), _ = mul_tax.backward(tax_cache, 1.0)
    (d_apple, d_apple_count), _ = mul_apple.backward(apple_cache, d_apple_price)
    return {"price": price, "d_apple": d_apple, "d_apple_count": d_apple_count, "d_tax": d_tax}


def apple_orange_graph():
    """(apples x count + oranges x count) x tax: every edge's value and gradient."""
    mul_apple, mul_orange, add_fruit, mul_tax = layers.mul(), layers.mul(), layers.add(), \
        layers.mul()
    apple_price, apple_cache = mul_apple.forward((), (APPLE, APPLE_COUNT))
    orange_price, orange_cache = mul_orange.forward((), (ORANGE, ORANGE_COUNT))
    total, add_cache = add_fruit.forward((), (apple_price, orange_price))
    price, tax_cache = mul_tax.forward((), (total, TAX))
    (d_total, d_tax), _ = mul_tax.backward(tax_cache, 1.0)
    (d_apple_price, d_orange_price), _ = add_fruit.backward(add_cache, d_total)
    (d_apple, d_apple_count), _ = mul_apple.backward(apple_cache, d_apple_price)
    (d_orange, d_orange_count), _ = mul_orange.backward(orange_cache, d_orange_price)
    return {"apple_price": apple_price, "orange_price": orange_price, "total": total,
            "price": price, "d_apple": d_apple, "d_apple_count": d_apple_count,
            "d_orange": d_orange, "d_orange_count": d_orange_count,
            "d_apple_price": d_apple_price, "d_orange_price": d_orange_price,
            "d_total": d_total, "d_tax": d_tax}


def graph_figure(g):
    """The apple-orange graph with the value above and the gradient below each edge."""
    nodes = [
        {"id": "apple", "label": "apple", "pos": (0, 3), "kind": "value"},
        {"id": "apple count", "label": "apple count", "pos": (0, 2), "kind": "value"},
        {"id": "orange", "label": "orange", "pos": (0, 1), "kind": "value"},
        {"id": "orange count", "label": "orange count", "pos": (0, 0), "kind": "value"},
        {"id": "tax", "label": "tax", "pos": (4, 0), "kind": "value"},
        {"id": "mul apple", "label": "×", "pos": (2, 2.5)},
        {"id": "mul orange", "label": "×", "pos": (2, 0.5)},
        {"id": "add", "label": "+", "pos": (4, 1.5)},
        {"id": "mul tax", "label": "×", "pos": (6, 1)},
        {"id": "price", "label": "price", "pos": (8, 1), "kind": "value"},
    ]
    edges = [
        {"src": "apple", "dst": "mul apple", "forward": APPLE, "backward": g["d_apple"]},
        {"src": "apple count", "dst": "mul apple", "forward": APPLE_COUNT,
         "backward": g["d_apple_count"]},
        {"src": "orange", "dst": "mul orange", "forward": ORANGE, "backward": g["d_orange"]},
        {"src": "orange count", "dst": "mul orange", "forward": ORANGE_COUNT,
         "backward": g["d_orange_count"]},
        {"src": "mul apple", "dst": "add", "forward": g["apple_price"],
         "backward": g["d_apple_price"]},
        {"src": "mul orange", "dst": "add", "forward": g["orange_price"],
         "backward": g["d_orange_price"]},
        {"src": "add", "dst": "mul tax", "forward": g["total"], "backward": g["d_total"]},
        {"src": "tax", "dst": "mul tax", "forward": TAX, "backward": g["d_tax"]},
        {"src": "mul tax", "dst": "price", "forward": g["price"], "backward": 1.0},
    ]
    return plot.computational_graph(nodes, edges, title="note 001: apples and oranges")


def gradient_checks(key, batch):
    """Check dense, relu, sigmoid and softmax_cross_entropy against both referees."""
    k_x, k_dense, k_logits, k_labels = random.split(key, 4)
    x = random.normal(k_x, (batch, FEATURES))
    dense = layers.dense(UNITS)
    dense_params, _ = dense.init(k_dense, (FEATURES,))
    logits = random.normal(k_logits, (batch, UNITS))
    labels = random.integers(k_labels, 0, UNITS, (batch,))
    return {
        "dense": check.check_layer(dense, dense_params, x),
        "relu": check.check_layer(layers.relu(), (), x),
        "sigmoid": check.check_layer(layers.sigmoid(), (), x),
        "softmax_cross_entropy": check.check_loss(losses.softmax_cross_entropy(), logits,
                                                  labels),
    }


def bug_demonstrations(key):
    """Evidence for BUGS: relu leaves dy alone; the fused loss applies softmax itself."""
    k_x, k_dy = random.split(key)
    x, dy = random.normal(k_x, (3, 4)), random.normal(k_dy, (3, 4))
    dy_before = dy.copy()
    relu = layers.relu()
    _, cache = relu.forward((), x)
    relu.backward(cache, dy)
    z, label = np.array([[2.0, 1.0, -1.0]]), np.array([0])
    value, _ = losses.softmax_cross_entropy().forward(z, label)
    by_hand = -np.log(np.exp(z[0, 0]) / np.exp(z[0]).sum())
    return {"relu_leaves_dy_unchanged": bool(np.array_equal(dy, dy_before)),
            "softmax_loss_value": float(value), "softmax_loss_by_hand": float(by_hand)}


def main(argv=None):
    args = _common.parse_args("graph_nodes", __doc__, argv)
    batch = QUICK_BATCH if args.quick else BATCH
    say, compare = _common.say, _common.compare

    apple = apple_graph()
    say("apple graph: 100 x 2 x 1.1, backward from 1")
    for name, note in NOTE_APPLE.items():
        say(compare(f"  {name}", apple[name], note))
    graph = apple_orange_graph()
    say("apple-orange graph: (100 x 2 + 150 x 3) x 1.1, backward from 1")
    for name, note in NOTE_APPLE_ORANGE.items():
        say(compare(f"  {name}", graph[name], note))
    plot.save(graph_figure(graph), args.out / "graph.png")

    check_key, bug_key = random.split(random.key(args.seed))
    reports = gradient_checks(check_key, batch)
    for report in reports.values():
        say(str(report))
    rows = [(f"{name}: {leaf.path}", leaf.error_jax, leaf.error_numerical)
            for name, report in reports.items() for leaf in report.leaves]
    plot.save(plot.gradient_check_report(rows, tol_jax=check.TOL_JAX,
                                         tol_numerical=check.TOL_NUMERICAL,
                                         title="note 001: hand-written gradients checked"),
              args.out / "gradient_check.png")
    bugs = bug_demonstrations(bug_key)
    say(f"relu backward left dy unchanged: {bugs['relu_leaves_dy_unchanged']}; "
        f"softmax_cross_entropy of [2, 1, -1] with label 0: {bugs['softmax_loss_value']:.8f} "
        f"= -log softmax: {bugs['softmax_loss_by_hand']:.8f}")
    say(BUGS)

    metrics = {"apple_price": apple["price"],
               **{f"apple_only_{name}": apple[name] for name in NOTE_APPLE if name != "price"},
               **{name: graph[name] for name in NOTE_APPLE_ORANGE},
               "gradient_check_ok": all(r.ok for r in reports.values()), **bugs}
    for name, report in reports.items():
        metrics[f"max_error_{name}_vs_jax"] = max(leaf.error_jax for leaf in report.leaves)
        metrics[f"max_error_{name}_vs_numerical"] = max(leaf.error_numerical
                                                        for leaf in report.leaves)
    config = {"apple": APPLE, "apple_count": APPLE_COUNT, "orange": ORANGE,
              "orange_count": ORANGE_COUNT, "tax": TAX, "check_batch": batch,
              "check_features": FEATURES, "check_units": UNITS, "quick": args.quick}
    _common.write_metrics(args.out, "graph_nodes", config=config, seed=args.seed,
                          metrics=metrics)
    return metrics


if __name__ == "__main__":
    main()
