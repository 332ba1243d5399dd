"""A 784-256-10 ReLU MLP with dropout on the hidden layer, as a model file for `symdl train`.

Dropout draws a new mask on every step from the generator ``rng`` (the generated step takes a
``numpy.random.Generator``; `symdl train` seeds it from ``--seed``, so a run is reproducible).
The rate is a placeholder with a training and a test value (``settings``): 0.5 while training,
0.0 when the test set is evaluated, where the mask keeps every unit. Example:

    symdl train examples/models/mlp_dropout.py --epochs 5 --optimizer adam --lr 1e-3
"""

import symdl as sd

HIDDEN = 256

x = sd.placeholder("x", (None, 784))
y = sd.placeholder("y", (None,), dtype="int64")  # class ids
rate = sd.placeholder("rate", ())  # the dropout rate: fed 0.5 in training, 0.0 in evaluation
rng = sd.rng("rng")
logits, params = sd.layers.mlp(x, [HIDDEN, 10], activation=sd.relu, name="dense",
                               dropout=rate, rng=rng)
loss = sd.mean(sd.softmax_cross_entropy(logits, y)).named("loss")
accuracy = sd.mean(sd.cast(sd.equal(sd.argmax(logits, axis=1), y), "float32")).named("accuracy")

name = "mlp_dropout"
inputs = [x, y]
metrics = {"accuracy": accuracy}
settings = {rate: (0.5, 0.0)}
functions = sd.optim.Adam().step_function(loss, params, inputs, metrics, settings).functions
