"""A 2-layer perceptron: h = relu(x W1 + b1), logits = h W2 + b2, softmax cross-entropy.

    symdl derive examples/classroom/mlp.py --wrt W1 b1 W2 b2 -o derivation.html

Textbook result: logits_bar = (softmax(logits) - y) / N, W2_grad = h^T logits_bar,
h_bar = logits_bar W2^T, a_bar = h_bar * [a > 0], W1_grad = x^T a_bar.
"""

import symdl as sd

x = sd.placeholder("x", (None, 784))
y = sd.placeholder("y", (None, 10))
W1 = sd.parameter("W1", (784, 32))
b1 = sd.parameter("b1", (32,))
W2 = sd.parameter("W2", (32, 10))
b2 = sd.parameter("b2", (10,))

a = (x @ W1 + b1).named("a")
h = sd.relu(a).named("h")
logits = (h @ W2 + b2).named("logits")
loss = sd.mean(sd.softmax_cross_entropy(logits, y)).named("loss")
grads = sd.grad(loss, [W1, b1, W2, b2])

name = "mlp"
functions = {"loss_and_grads": ([x, y, W1, b1, W2, b2], [loss, *grads])}
WRT = [W1, b1, W2, b2]

if __name__ == "__main__":
    print(sd.derive(loss, WRT))
