"""A 784-256-10 ReLU MLP for MNIST, as a model file for `symdl train` (and `symdl generate`).

`symdl train` reads ``inputs`` (the placeholders a batch fills, in order), ``loss``, ``params``
(``{parameter: initializer}``) and optionally ``metrics`` and ``name``. Example:

    symdl train examples/models/mlp.py --epochs 5 --optimizer adam --lr 1e-3

``functions`` (an Adam train step with default settings) lets `symdl generate` print the module.
"""

import symdl as sd

HIDDEN = 256

x = sd.placeholder("x", (None, 784))
y = sd.placeholder("y", (None,), dtype="int64")  # class ids
logits, params = sd.layers.mlp(x, [HIDDEN, 10], activation=sd.relu, name="dense")
loss = sd.mean(sd.softmax_cross_entropy(logits, y)).named("loss")
accuracy = sd.mean(sd.cast(sd.equal(sd.argmax(logits, axis=1), y), "float32")).named("accuracy")

name = "mlp"
inputs = [x, y]
metrics = {"accuracy": accuracy}
functions = sd.optim.Adam().step_function(loss, params, inputs, metrics).functions
