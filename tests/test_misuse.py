"""Misuse that used to fail late or raw: each is refused early with a typed, helpful error, or
accepted as the documentation shows it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import symdl as sd

# --------------------------------------------------------------------------- sd.init.initialize


def test_initialize_takes_a_list_of_parameters_as_fit_documents() -> None:
    """``sd.init.initialize([W, b])`` raised AttributeError ('list' object has no 'items')."""
    W = sd.parameter("W", (4, 3), "float64")
    b = sd.parameter("b", (3,), "float64")
    values = sd.init.initialize([W, b], seed=1)
    assert list(values) == ["W", "b"]
    assert values["W"].shape == (4, 3) and values["W"].dtype == np.float64
    np.testing.assert_array_equal(values["b"], np.zeros(3))
    # The same draws as the mapping with the documented defaults spelled out.
    spelled = sd.init.initialize({W: sd.init.glorot_uniform, b: sd.init.zeros}, seed=1)
    np.testing.assert_array_equal(values["W"], spelled["W"])
    assert np.abs(values["W"]).max() <= np.sqrt(6 / 7)


def test_initialize_list_serves_compile_train_step_and_fit(symdl_cache: Path) -> None:
    """The train module's docstring, run as written with a list of parameters."""
    x = sd.placeholder("x", (None, 4), "float32")
    y = sd.placeholder("y", (None,), "int64")
    W = sd.parameter("W", (4, 3))
    b = sd.parameter("b", (3,))
    params = [W, b]
    loss = sd.mean(sd.softmax_cross_entropy(x @ W + b, y)).named("loss")
    step = sd.optim.compile_train_step(loss, params, sd.optim.SGD(0.1), [x, y],
                                       cache_dir=symdl_cache)
    values = sd.init.initialize(params, seed=0)
    rng = np.random.default_rng(0)
    data = (rng.standard_normal((20, 4)).astype(np.float32), rng.integers(0, 3, 20))
    history = sd.fit(step, values, data, epochs=1, batch_size=10, quiet=True)
    assert history.step == 2


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({sd.parameter("W", (2, 2))}, "set"),
        (sd.parameter("W", (2, 2)), "in a list"),
        ([sd.placeholder("x", (2,))], "sd.parameter"),
        ({sd.parameter("W", (2, 2)): 0.5}, "must be a function"),
    ],
)
def test_initialize_refuses_what_it_cannot_use(params: object, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        sd.init.initialize(params)  # type: ignore[arg-type]
