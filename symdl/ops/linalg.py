"""Matrix products: `matmul` for vectors, matrices and batches of matrices (numpy's rules), and
`basis_product`, a product with a matrix along every direction of its basis (full Jacobians)."""

from __future__ import annotations

from ..errors import ShapeError
from ..ir import Expr
from ..types import Shape, broadcast_shapes, format_shape
from . import elementwise as _ew
from . import reduce as _reduce
from . import shape as _shape
from .base import PROD, Latex, Op, as_expr, register, require_float
from .indexing import arange


@register
class Matmul(Op):
    """a @ b: vectors are promoted to matrices and the added axis dropped, as in numpy"""

    name = "matmul"
    numpy = "{0} @ {1}"
    infix, precedence = "@", 20
    hint, latex = "{0}_{1}", Latex(r"{0} \, {1}", PROD, (PROD, PROD + 1))
    latex_rule = r"C = A B \;\Rightarrow\; \bar{A} = \bar{C} B^\top, \quad \bar{B} = A^\top \bar{C}"

    @classmethod
    def infer(cls, a: Expr, b: Expr) -> tuple[Shape, str]:
        if a.ndim == 0 or b.ndim == 0:
            raise ShapeError(
                f"matmul: operands must have at least one dimension, got {format_shape(a.shape)} "
                f"@ {format_shape(b.shape)}; use * for scalars"
            )
        a2 = a.shape if a.ndim > 1 else (1, *a.shape)
        b2 = b.shape if b.ndim > 1 else (*b.shape, 1)
        if a2[-1] != b2[-2]:
            raise ShapeError(
                f"matmul: inner sizes differ: {format_shape(a.shape)} @ {format_shape(b.shape)} "
                f"({a2[-1]} vs {b2[-2]}); transpose an operand or check the layer sizes"
            )
        batch = broadcast_shapes("matmul", a2[:-2], b2[:-2])
        rows = (a2[-2],) if a.ndim > 1 else ()
        cols = (b2[-1],) if b.ndim > 1 else ()
        return (*batch, *rows, *cols), _ew._promote("matmul", a, b)

    @staticmethod
    def vjp(g: Expr, out: Expr, a: Expr, b: Expr) -> tuple[Expr, Expr]:
        # Work on the matrix forms, then undo the vector promotion and any batch broadcast.
        a2 = a if a.ndim > 1 else _shape.expand_dims(a, 0)
        b2 = b if b.ndim > 1 else _shape.expand_dims(b, -1)
        # Restore the column axis first: for vector @ vector, g is a scalar and has no axis -2.
        g2 = g
        if b.ndim == 1:
            g2 = _shape.expand_dims(g2, -1)
        if a.ndim == 1:
            g2 = _shape.expand_dims(g2, -2)
        ga = _ew.sum_to(matmul(g2, _shape.swapaxes_last(b2)), a2.shape)
        gb = _ew.sum_to(matmul(_shape.swapaxes_last(a2), g2), b2.shape)
        return _shape.reshape(ga, a.shape), _shape.reshape(gb, b.shape)

    @staticmethod
    def jvp(t: tuple[Expr | None, Expr | None], out: Expr, a: Expr, b: Expr) -> Expr | None:
        ta, tb = t
        terms = []
        if ta is not None:
            unbatched = ta.ndim == a.ndim
            terms.append(matmul(ta, b) if unbatched else _batched(ta, a, b, out, left=True))
        if tb is not None:
            unbatched = tb.ndim == b.ndim
            terms.append(matmul(a, tb) if unbatched else _batched(tb, a, b, out, left=False))
        if not terms:
            return None
        return terms[0] if len(terms) == 1 else terms[0] + terms[1]


def _batched(t: Expr, a: Expr, b: Expr, out: Expr, *, left: bool) -> Expr:
    """``t @ b`` (``left``) or ``a @ t`` for a tangent ``t`` with one trailing batch axis.

    Both are one matmul on the matrix forms (vectors promoted as numpy does), never a loop
    over the batch: ``a @ t`` folds the batch into the columns, ``(a, D) @ (D, C * n)``, which
    is a reshape of ``t`` and one GEMM; ``t @ b`` multiplies each row block by ``b`` from the
    left transposed, ``b^T (C, D) @ t (B, D, n)``, a stack of GEMMs over ``a``'s rows.
    """
    n = t.shape[-1]
    a2 = a if a.ndim > 1 else _shape.expand_dims(a, 0)
    b2 = b if b.ndim > 1 else _shape.expand_dims(b, -1)
    if left:
        t2 = t if a.ndim > 1 else _shape.reshape(t, (1, *t.shape))
        b_t = _shape.swapaxes_last(b2)
        if b2.ndim > 2:  # one b per batch entry of a: broadcast it over a's rows too
            b_t = _shape.expand_dims(b_t, -3)
        product = matmul(b_t, t2)
    else:
        t2 = t if b.ndim > 1 else _shape.reshape(t, (*b.shape, 1, n))
        cols = t2.shape[-2]
        if isinstance(cols, int):
            folded = _shape.reshape(t2, (*t2.shape[:-2], cols * n))
            product = matmul(a2, folded)
            product = _shape.reshape(product, (*product.shape[:-1], cols, n))
        else:  # a symbolic column count cannot be folded: move the batch axis in front
            last = t2.ndim - 1
            moved = _shape.transpose(t2, (*range(last - 2), last, last - 2, last - 1))
            product = matmul(_shape.expand_dims(a2, -3), moved)
            last = product.ndim - 1
            product = _shape.transpose(product, (*range(last - 2), last - 1, last, last - 2))
    return _shape.reshape(product, (*out.shape, n))


def matmul(a: object, b: object) -> Expr:
    """Matrix product ``a @ b`` with numpy's rules for vectors and batches."""
    return Matmul.make(as_expr(a), as_expr(b))


@register
class BasisProduct(Op):
    """``a @ W`` along every basis direction of a (D, C) matrix ``W``, directions last:
    ``out[..., c, d * C + j] = a[..., d] * (c == j)`` (`symdl.forward`'s full Jacobians)"""

    name = "basis_product"
    hint = "{0}_basis"
    latex = Latex(r"{0} \otimes I", PROD, (PROD,))
    latex_rule = (r"C_{c, (d, j)} = A_{d} \, [c = j] \;\Rightarrow\; \bar{A}_{d} = "
                  r"\textstyle\sum_{c} \bar{C}_{c, (d, c)}")

    @classmethod
    def infer(cls, a: Expr, *, cols: int) -> tuple[Shape, str]:
        require_float("basis_product", a)
        if a.ndim == 0 or not isinstance(a.shape[-1], int) or cols < 1:
            raise ShapeError(
                f"basis_product: needs an operand with a static last axis and cols >= 1, got "
                f"{format_shape(a.shape)} and cols={cols}"
            )
        return (*a.shape[:-1], cols, a.shape[-1] * cols), a.dtype

    @staticmethod
    def vjp(g: Expr, out: Expr, a: Expr, *, cols: int) -> tuple[Expr]:
        # d out[..., c, (d, j)] / d a[..., d] = [c == j]: the diagonal of each (c, j) block.
        blocks = _shape.reshape(g, (*a.shape[:-1], cols, a.shape[-1], cols))
        eye = _shape.reshape(identity(cols, a.dtype), (cols, 1, cols))
        return (_reduce.sum(blocks * eye, axis=(-3, -1)),)

    @staticmethod
    def jvp(t: tuple[Expr | None], out: Expr, a: Expr, *, cols: int) -> Expr | None:
        (ta,) = t
        if ta is None:
            return None
        if ta.ndim == a.ndim:
            return BasisProduct.make(ta, cols=cols)
        # Linear in a: the batch axis goes in front, through the op, and back to the end.
        last = ta.ndim - 1
        spread = BasisProduct.make(_shape.transpose(ta, (last, *range(last))), cols=cols)
        return _shape.transpose(spread, (*range(1, spread.ndim), 0))


def identity(size: int, dtype: str) -> Expr:
    """The (size, size) identity, built from two aranges (not size * size printed numbers)."""
    k = arange(size)
    return _ew.cast(_ew.equal(_shape.expand_dims(k, 1), k), dtype)


def basis_product(a: object, cols: int) -> Expr:
    """``a @ W`` along each of the ``D * C`` basis directions of a (D, C) matrix ``W``, batch
    last: ``out[..., c, d * C + j] = a[..., d] * (c == j)``, of shape (..., C, D * C). What
    `symdl.jacobian` computes for ``a @ W``, written into zeros instead of multiplying by the
    identity."""
    return BasisProduct.make(as_expr(a, "basis_product"), cols=int(cols))
