"""Statements folded into one BLAS call: parameter updates ``W -= lr * (A.T @ G)`` as one gemm
with beta = 1 (as PyTensor's ``Gemm{inplace}`` does), and full sums of products
``(a * b).sum()`` as one ``np.vdot(a, b)`` (no product array, one pass instead of two).

`fold_updates` decides, per updated weight and by its shape at generation time, which updates
are folded; the writer prints each as ``_gemm_update(W, A, G, -lr)``, a helper defined in the
generated module itself (`GEMM_HELPER_SOURCE`). The helper calls numpy's own BLAS through
ctypes (standard library): never scipy's or another copy, since a second OpenBLAS thread pool
spinning next to numpy's made a training step 11 times slower. Where that BLAS cannot be
found, or an array cannot be handed to it as it is (not C-contiguous, another dtype), the
helper computes ``W += alpha * (A.T @ G)``: the plain numpy update, equal to rounding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sympy

from symdl.ir import Expr

# Fold only weights of at least this many elements. Measured on this machine (float32,
# OpenBLAS 0.3.31 from numpy 2.4's wheel, median of 50 interleaved rounds, 1 thread), folded
# time / plain ``W -= lr * (A.T @ G)`` time: 784x10 at batch 100: 1.10, 256x10 at 128: 1.22,
# 1024x10 at 256: 0.98, 512x256 at 128: 0.91, 784x256 at 128: 0.83, 784x1024 at 256: 0.50.
# Below about 64k elements the three ``.ctypes.data`` lookups and the ctypes call cost more
# than the pass over W that folding saves.
GEMM_FOLD_MIN_ELEMENTS = 65536

GEMM_HELPER = "_gemm_update"
# The module-level names the helper defines or imports: no generated name may take them.
GEMM_NAMES = (GEMM_HELPER, "_find_gemm", "_GEMMS", "ctypes")

GEMM_HELPER_SOURCE = '''
def _find_gemm():
    """numpy's own BLAS ``gemm`` for float32 and float64 through ctypes, as {dtype: function},
    or {} where it cannot be found (the update then takes the plain numpy path).

    The symbols are looked up in numpy's core extension, which links the BLAS that ``@`` calls,
    so this is the same library and the same thread pool. numpy's wheels bundle OpenBLAS with
    64-bit integers and prefixed names (``scipy_cblas_sgemm64_``); other builds name them
    ``cblas_sgemm64_`` or ``cblas_sgemm``, whose integer width the build configuration gives.
    """
    try:
        from numpy._core import _multiarray_umath as core
    except ImportError:  # numpy 1.x
        from numpy.core import _multiarray_umath as core
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        library = ctypes.CDLL(core.__file__)
    except (KeyError, TypeError, AttributeError, OSError):
        return {}
    if "openblas" not in str(blas.get("name", "")).lower():
        return {}  # another BLAS: its symbol names and integer width are not known here
    index64 = "USE64BITINT" in str(blas.get("openblas configuration", ""))
    candidates = [("scipy_cblas_{}gemm64_", ctypes.c_int64), ("cblas_{}gemm64_", ctypes.c_int64),
                  ("scipy_cblas_{}gemm", None), ("cblas_{}gemm", None)]
    for pattern, index in candidates:
        index = index or (ctypes.c_int64 if index64 else ctypes.c_int)
        found = {}
        for dtype, letter, real in ((np.float32, "s", ctypes.c_float),
                                    (np.float64, "d", ctypes.c_double)):
            function = getattr(library, pattern.format(letter), None)
            if function is not None:
                pointer = ctypes.c_void_p
                function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, index, index, index,
                                     real, pointer, index, pointer, index, real, pointer, index]
                function.restype = None
                found[np.dtype(dtype)] = function
        if found:
            return found
    return {}


_GEMMS = _find_gemm()  # {} makes every folded update take the plain numpy path


def _gemm_update(W, A, G, alpha):
    """``W += alpha * (A.T @ G)`` in place, as one BLAS gemm with beta = 1: no temporary for
    the product and no second pass over ``W``.

    Arrays that cannot go to BLAS as they are (not C-contiguous, another dtype than ``W``) take
    the plain numpy update, which computes the same to rounding.
    """
    gemm = _GEMMS.get(W.dtype)
    if (
        gemm is None or A.dtype != W.dtype or G.dtype != W.dtype
        or not (W.flags.c_contiguous and A.flags.c_contiguous and G.flags.c_contiguous)
    ):
        W += alpha * (A.T @ G)
        return
    n, k = A.shape
    m = G.shape[1]
    # Row-major (101), A transposed (112), G as it is (111): W <- alpha * A.T @ G + 1.0 * W.
    gemm(101, 112, 111, k, m, n, alpha, A.ctypes.data, k, G.ctypes.data, m, 1.0, W.ctypes.data, m)
'''


@dataclass(frozen=True)
class Fold:
    """One folded update: ``leaf`` += ``-scale`` * ``a``.T @ ``g``; ``skipped`` are the
    statements the gemm replaces (the product and its scaling), never printed."""

    leaf: Expr
    a: Expr
    g: Expr
    scale: Expr
    skipped: tuple[Expr, ...]


def fold_updates(
    order: Sequence[Expr], results: Sequence[Expr], updates: Mapping[Expr, Expr],
    min_elements: int = GEMM_FOLD_MIN_ELEMENTS,
) -> tuple[list[Expr], dict[Expr, Fold]]:
    """The updates to fold into a gemm, and ``order`` with each fold's statements moved next to
    its update (so that no statement between them can take ``A``'s or ``G``'s array).

    An update folds when its new value is ``W - s * (A.T @ G)`` for a scalar ``s`` and 2-D
    ``A`` and ``G`` of ``W``'s dtype, the product and its scaling are used nowhere else, ``W``
    has at least ``min_elements`` elements, nothing reads ``W`` after its update, and neither
    ``A`` nor ``G`` is ``W`` or a view of it (BLAS may not read the array it writes).
    Returns ``(order, {new value: Fold})``.
    """
    users: dict[Expr, list[Expr]] = {}
    for n in order:
        for i in dict.fromkeys(n.inputs):
            users.setdefault(i, []).append(n)
    position = {n: k for k, n in enumerate(order)}
    kept = set(results)
    folds: dict[Expr, Fold] = {}
    for leaf, new in updates.items():
        if new in kept or leaf in kept or _size(leaf) < min_elements:
            continue
        match = _match(new, leaf)
        if match is None:
            continue
        scale, product, skipped = match
        if any(x in kept or users.get(x, []) != [user] for x, user in
               zip(skipped, (*skipped[1:], new))):
            continue
        a, g = product.inputs[0].inputs[0], product.inputs[1]
        if _reads_after(leaf, new, users, position) or leaf in (_root(a), _root(g)):
            continue  # gemm would read W while it writes W (``W - lr * (W.T @ G)``)
        folds[new] = Fold(leaf, a, g, scale, skipped)
    return _moved_next_to(order, folds), folds


@dataclass(frozen=True)
class Dot:
    """A full sum of an elementwise product printed as ``np.vdot(a, b)``; ``skipped`` is the
    product's statement, never printed."""

    a: Expr
    b: Expr
    skipped: tuple[Expr, ...]


def fold_dots(order: Sequence[Expr], results: Sequence[Expr]) -> tuple[list[Expr], dict[Expr, Dot]]:
    """The sums to print as ``np.vdot``, and ``order`` with each product moved next to its sum.

    A sum folds when it sums every axis (no keepdims) of ``a * b``, where ``a`` and ``b`` are
    float arrays of the product's shape (no broadcasting) and nothing else reads the product:
    the loss ``sum(y * log_softmax)`` of a cross-entropy. ``np.vdot`` is one BLAS dot over both
    arrays; it equals the sum of the products to rounding (it adds in another order).
    """
    users: dict[Expr, list[Expr]] = {}
    for n in order:
        for i in dict.fromkeys(n.inputs):
            users.setdefault(i, []).append(n)
    kept = set(results)
    dots: dict[Expr, Dot] = {}
    for n in order:
        if n.is_leaf or n.op.name != "sum" or n.attr("keepdims"):
            continue
        product = n.inputs[0]
        if (
            product.op.name != "multiply" or product in kept or users.get(product) != [n]
            or n.attr("axis") != tuple(range(product.ndim)) or product.ndim == 0
            or product.dtype not in ("float32", "float64")
        ):
            continue
        a, b = product.inputs
        if a.shape == b.shape == product.shape and a.dtype == b.dtype == product.dtype:
            dots[n] = Dot(a, b, (product,))
    return _moved_next_to(order, dots), dots


def _moved_next_to(order: Sequence[Expr], folds: Mapping[Expr, Fold | Dot]) -> list[Expr]:
    """``order`` with each fold's skipped statements right before the statement they fold into
    (they have no other users, so this keeps every input before its use)."""
    moved = {x for fold in folds.values() for x in fold.skipped}
    reordered: list[Expr] = []
    for n in order:
        if n in moved:
            continue
        if n in folds:
            reordered += folds[n].skipped
        reordered.append(n)
    return reordered


def _root(node: Expr) -> Expr:
    """The value whose memory ``node`` views (itself if it is not a view)."""
    while node.op.is_view:
        node = node.inputs[0]
    return node


def _size(node: Expr) -> int:
    size = 1
    for d in node.shape:
        if not isinstance(d, int):
            return 0  # a symbolic size: not a weight
        size *= d
    return size


def _match(new: Expr, leaf: Expr) -> tuple[Expr, Expr, tuple[Expr, ...]] | None:
    """``(s, A.T @ G, skipped statements)`` if ``new`` is ``leaf - s * (A.T @ G)``."""
    inputs = new.inputs
    if new.op.name == "fused" and len(inputs) == 3:
        symbols = dict(zip(inputs, new.attr("symbols")))
        if leaf not in symbols:
            return None
        scalars = [i for i in inputs if i.shape == ()]
        products = [i for i in inputs if i is not leaf and i.shape != ()]
        if len(scalars) != 1 or len(products) != 1:
            return None
        scale, product = scalars[0], products[0]
        body = symbols[leaf] - symbols[scale] * symbols[product]
        if sympy.expand(new.attr("body") - body) != 0:
            return None
        skipped: tuple[Expr, ...] = (product,)
    elif new.op.name == "subtract" and inputs[0] is leaf and inputs[1].op.name == "multiply":
        scaled = inputs[1]
        scalars = [i for i in scaled.inputs if i.shape == ()]
        products = [i for i in scaled.inputs if i.shape != ()]
        if len(scalars) != 1 or len(products) != 1:
            return None
        scale, product = scalars[0], products[0]
        skipped = (product, scaled)
    else:
        return None
    if not _is_gemm(product, leaf) or scale.dtype != leaf.dtype:
        return None
    return scale, product, skipped


def _is_gemm(product: Expr, leaf: Expr) -> bool:
    """Whether ``product`` is ``A.T @ G`` with 2-D ``A`` and ``G`` of ``leaf``'s shape and dtype."""
    if product.op.name != "matmul" or product.shape != leaf.shape or len(leaf.shape) != 2:
        return False
    left, right = product.inputs
    if left.op.name != "transpose" or left.attr("axes") != (1, 0):
        return False
    a = left.inputs[0]
    return (
        a.ndim == 2 and right.ndim == 2
        and a.dtype == right.dtype == leaf.dtype and leaf.dtype in ("float32", "float64")
    )


def _reads_after(leaf: Expr, new: Expr, users: Mapping[Expr, list[Expr]],
                 position: Mapping[Expr, int]) -> bool:
    """Whether a statement after ``new`` reads ``leaf``, directly or through views of it."""
    stack, at = [leaf], position[new]
    while stack:
        node = stack.pop()
        for user in users.get(node, []):
            if user is new:
                continue
            if user.op.is_view:
                stack.append(user)
            elif position[user] > at:
                return True
    return False
