"""Evaluate a derivation's printed LaTeX with numpy: an independent reader of the notation.

Written for the tests of `symdl.derive`, without using symdl: it reads the formulas a page
shows, as a student would, and computes them. Conventions (those the page states):

- vectors are columns; ``v^\\top`` of a vector is a row, and juxtaposition is the matrix
  product (a column times a row is an outer product), or a scalar product when one side is a
  scalar; ``\\odot`` is the elementwise product with numpy broadcasting;
- ``\\mathbf{1}_{K}`` is a ones vector of K entries, ``\\mathbf{1}`` one whose length its
  neighbour gives (``\\mathbf{1}^\\top A`` sums A's rows, ``A \\mathbf{1}`` its columns);
- ``\\sum_{n}`` sums over the batch axis (the first), ``\\sum_{j}`` over the last one, and a
  subscript index on a tensor (``y_{j}``) only names that axis;
- ``\\left[a > 0\\right]`` is 1 where it holds, else 0.

Mixing ``\\odot`` and a matrix product in one product without brackets is refused
(`Ambiguous`): the reader would have to guess the precedence.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["Ambiguous", "evaluate"]


class Ambiguous(ValueError):
    """A formula that does not say what it computes (precedence or shapes)."""


@dataclass
class V:
    """A value: an array, whether a vector was transposed into a row, or a ones vector of
    unknown length (``a`` is None)."""

    a: np.ndarray | None
    row: bool = False
    scale: object = 1.0  # a number in front of a ones vector of unknown length


TOKEN = re.compile(r"""
    (?P<skip>\s+|\\,|\\;|\\!|\\textstyle|\\displaystyle|\\left\.|\\right\.)
  | (?P<open>\\left\(|\\left\\\{|\(|\\\{)
  | (?P<close>\\right\)|\\right\\\}|\)|\\\})
  | (?P<lbrack>\\left\[)
  | (?P<rbrack>\\right\])
  | (?P<absopen>\\left\|)
  | (?P<absclose>\\right\|)
  | (?P<ones>\\mathbf\{1\})
  | (?P<zeros>\\mathbf\{0\})
  | (?P<bar>\\bar\{\\?\w+\}|\\overline\{(?:[^{}]|\{[^{}]*\})*\})
  | (?P<text>\\text\{[^{}]*\})
  | (?P<func>\\operatorname\{\w+\}|\\log|\\sigma|\\sinh|\\cosh|\\tanh|\\sin|\\cos|\\exp
             |\\max|\\min|\\sqrt)(?![a-zA-Z])
  | (?P<frac>\\frac)
  | (?P<sum>\\sum)
  | (?P<odot>\\odot)
  | (?P<top>\\top)
  | (?P<cmp>\\le|\\ge|\\ne|>|<|=)
  | (?P<greek>\\[a-zA-Z]+)
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<name>[A-Za-z])
  | (?P<punct>[-+^_{},])
""", re.VERBOSE)


def tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if m is None:
            raise ValueError(f"cannot read {text[pos:pos + 20]!r} in {text!r}")
        pos = m.end()
        kind = m.lastgroup or ""
        if kind != "skip":
            out.append((kind, m.group()))
    return out


FUNCTIONS = {
    r"\log": np.log, r"\sin": np.sin, r"\cos": np.cos, r"\tanh": np.tanh, r"\cosh": np.cosh,
    r"\sinh": np.sinh, r"\exp": np.exp, r"\sqrt": np.sqrt,
    r"\sigma": lambda z: 1 / (1 + np.exp(-z)),
    "softplus": lambda z: np.logaddexp(0, z),
    "relu": lambda z: np.maximum(z, 0),
    "softmax": lambda z: _softmax(z),
    "logsumexp": lambda z: np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1))
    + z.max(-1),
    "log1p": np.log1p, "sign": np.sign,
    # binary cross-entropy of a probability p and a label y, by its definition
    "bce": lambda p, y: -(y * np.log(p) + (1 - y) * np.log(1 - p)),
}


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class Reader:
    """A recursive-descent reader (recursion on the formula's nesting, which is shallow)."""

    def __init__(self, text: str, env: Mapping[str, object]) -> None:
        self.toks = tokens(text)
        self.i = 0
        self.env = {k: np.asarray(v) for k, v in env.items()}
        self.text = text
        self.indexed = 0  # inside a \\sum with indices: juxtaposition is the scalar product

    # ------------------------------------------------------------------ helpers
    def peek(self, k: int = 0) -> tuple[str, str]:
        return self.toks[self.i + k] if self.i + k < len(self.toks) else ("end", "")

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if value is not None and tok[1] != value:
            raise ValueError(f"expected {value!r}, got {tok[1]!r} in {self.text!r}")
        self.i += 1
        return tok

    def braced_raw(self) -> str:
        """The raw text of a ``{...}`` group (for subscripts)."""
        self.take("{")
        depth, parts = 1, []
        while True:
            kind, tok = self.take()
            if tok == "{":
                depth += 1
            elif tok == "}":
                depth -= 1
                if depth == 0:
                    return "".join(parts)
            parts.append(tok)

    # ------------------------------------------------------------------ grammar
    def expr(self) -> V:
        if self.peek()[1] == "-":
            self.take()
            value = neg(self.product())
        else:
            value = self.product()
        while self.peek()[1] in ("+", "-"):
            op = self.take()[1]
            right = self.product()
            value = V(value_of(value) + value_of(right) if op == "+"
                      else value_of(value) - value_of(right), value.row and right.row)
        return value

    def starts_factor(self) -> bool:
        kind, tok = self.peek()
        return kind in ("open", "lbrack", "absopen", "ones", "zeros", "bar", "text", "func",
                        "frac", "sum", "greek", "number", "name") or tok == "{"

    def product(self) -> V:
        value = self.factor()
        kinds: set[str] = set()
        while True:
            if self.peek()[0] == "odot":
                self.take()
                right = self.factor()
                kinds.add("odot")
                value = V(value_of(value) * value_of(right), value.row and right.row)
            elif self.starts_factor():
                right = self.factor()
                if self.indexed:  # y_{j} \\log p_{j}: entries times entries
                    value, kind = V(value_of(value) * value_of(right)), "scalar"
                else:
                    value, kind = juxtapose(value, right)
                kinds.add(kind)
            else:
                break
            if {"odot", "matrix"} <= kinds:
                raise Ambiguous(f"a Hadamard and a matrix product without brackets: {self.text}")
        return value

    def factor(self) -> V:
        value = self.primary()
        while self.peek()[1] in ("^", "_"):
            if self.take()[1] == "_":  # an index on a tensor only names an axis
                if self.peek()[1] == "{":
                    self.braced_raw()
                else:
                    self.take()
                continue
            if self.peek()[0] == "top":
                self.take()
                value = transpose(value)
            elif self.peek()[1] == "{" and self.peek(1)[0] == "top" and self.peek(2)[1] == "}":
                self.i += 3
                value = transpose(value)
            else:
                exponent = self.group()
                value = V(value_of(value) ** value_of(exponent), value.row)
        return value

    def group(self) -> V:
        """A ``{...}`` group or a single token (as in ``x^2``)."""
        if self.peek()[1] == "{":
            self.take()
            value = self.expr()
            self.take("}")
            return value
        return self.primary()

    def symbol(self, base: str) -> V:
        """A symbol, with its subscript if the environment knows the subscripted name."""
        if self.peek()[1] == "_":
            save = self.i
            self.take()
            sub = self.braced_raw() if self.peek()[1] == "{" else self.take()[1]
            for candidate in (f"{base}_{{{sub}}}", f"{base}_{sub}"):
                if candidate in self.env:
                    return V(self.env[candidate])
            self.i = save
        if base == "e" and "e" not in self.env and self.peek()[1] == "^":
            self.take()
            return V(np.exp(value_of(self.group())))
        if base not in self.env:
            raise KeyError(f"unknown symbol {base!r} in {self.text!r}")
        return V(self.env[base])

    def primary(self) -> V:
        kind, tok = self.take()
        if kind == "number":
            return V(np.asarray(float(tok)))
        if kind in ("name", "greek", "text", "bar"):
            return self.symbol(tok)
        if kind == "open" or tok == "{":
            value = self.expr()
            self.take()  # the matching close
            return value
        if kind == "lbrack":
            left = self.expr()
            op = self.take()[1]
            right = self.expr()
            self.take()
            a, b = value_of(left), value_of(right)
            test = {">": a > b, "<": a < b, r"\ge": a >= b, r"\le": a <= b, "=": a == b,
                    r"\ne": a != b}[op]
            return V(test.astype(np.result_type(a, b, np.float32)))
        if kind == "absopen":
            value = self.expr()
            self.take()
            return V(np.abs(value_of(value)))
        if kind == "frac":
            top, bottom = self.group(), self.group()
            return V(value_of(top) / value_of(bottom))
        if kind == "ones":
            if self.peek()[1] == "_":
                self.take()
                size = self.braced_raw() if self.peek()[1] == "{" else self.take()[1]
                n = int(size) if size.isdigit() else int(self.env[size])
                return V(np.ones(n))
            return V(None)
        if kind == "sum":
            self.take("_")
            index = self.braced_raw().split(",")
            self.indexed += 1
            operand = value_of(self.product())
            self.indexed -= 1
            if len(index) >= operand.ndim:
                return V(operand.sum())
            axes = tuple(0 if k == "n" else operand.ndim - len(index) + p
                         for p, k in enumerate(index))
            return V(operand.sum(axis=axes))
        if kind == "func":
            return self.call(tok)
        raise ValueError(f"unexpected {tok!r} in {self.text!r}")

    def call(self, tok: str) -> V:
        name = tok[len(r"\operatorname{"):-1] if tok.startswith(r"\operatorname") else tok
        power = None
        if self.peek()[1] == "^":  # sympy's \cosh^{2}{\left(x\right)}
            self.take()
            power = value_of(self.group())
        if name == r"\log" and self.peek() == ("func", r"\operatorname{softmax}"):
            fn = FUNCTIONS[r"\log"]
            value = value_of(self.factor())
            return V(fn(value))
        if self.peek()[0] == "open" or self.peek()[1] == "{":
            closing_brace = self.take()[1] == "{"
            if closing_brace and self.peek()[0] == "open":
                self.i -= 1
                args = [value_of(self.group())]
            else:
                args = [value_of(self.expr())]
                while self.peek()[1] == ",":
                    self.take()
                    args.append(value_of(self.expr()))
                self.take()
        else:
            args = [value_of(self.factor())]
        if name in (r"\max", r"\min"):
            result = (np.maximum if name == r"\max" else np.minimum)(*args)
        else:
            result = FUNCTIONS[name](*args)
        return V(result if power is None else result ** power)


def value_of(v: V) -> np.ndarray:
    if v.a is None:
        raise Ambiguous("a ones vector whose length nothing gives")
    return v.a


def neg(v: V) -> V:
    return V(-value_of(v), v.row)


def transpose(v: V) -> V:
    if v.a is None or v.a.ndim == 1:
        return V(v.a, not v.row, v.scale)
    return V(v.a.T if v.a.ndim == 2 else v.a)


def juxtapose(a: V, b: V) -> tuple[V, str]:
    """``a b``: a scalar product if either is a scalar, else the matrix product."""
    if a.a is None:  # 1^T B: column sums; 1 without ^T before B reads as nothing sensible
        if not a.row:
            raise Ambiguous("a ones column before a value")
        arr = value_of(b) * a.scale
        return (V(arr.sum(axis=0), True) if arr.ndim == 2 else V(arr.sum())), "matrix"
    if b.a is None and a.a.ndim == 0:  # (1/N) 1^T B: the number waits for the length
        return V(None, b.row, a.a * b.scale), "scalar"
    if b.a is None:  # A 1: row sums
        arr = value_of(a)
        if b.row or arr.ndim != 2:
            raise Ambiguous("a ones vector after a value that is not a matrix")
        return V(arr.sum(axis=1) * b.scale), "matrix"
    x, y = a.a, b.a
    if x.ndim == 0 or y.ndim == 0:
        return V(x * y, a.row if x.ndim else b.row), "scalar"
    if x.ndim == 1 and y.ndim == 1:
        if not a.row and b.row:
            return V(np.multiply.outer(x, y)), "matrix"
        if a.row and not b.row:
            if x.shape != y.shape:
                raise Ambiguous(f"row {x.shape} times column {y.shape}")
            return V(x @ y), "matrix"
        raise Ambiguous("two vectors of the same orientation side by side")
    if x.ndim == 1:
        if not a.row:
            raise Ambiguous(f"a column {x.shape} times a matrix {y.shape}")
        return V(x @ y, True), "matrix"
    if y.ndim == 1:
        if b.row and x.ndim == 2 and x.shape[1] == 1:  # a column as a matrix, times a row
            return V(x @ y[None, :]), "matrix"
        if b.row:
            raise Ambiguous(f"a matrix {x.shape} times a row {y.shape}")
        return V(x @ y), "matrix"
    return V(x @ y), "matrix"


def evaluate(text: str, env: Mapping[str, object]) -> np.ndarray:
    """The value of the LaTeX formula ``text`` with its symbols bound by ``env``."""
    reader = Reader(text, env)
    value = reader.expr()
    if reader.peek()[0] != "end":
        raise ValueError(f"unread {reader.toks[reader.i:]} in {text!r}")
    return value_of(value)
