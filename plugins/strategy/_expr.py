"""Factor expressions: a small typed formula language over the data's fields.

    rank(ts_mean(returns, 252) - ts_mean(returns, 21)) * (ts_std(returns, 63) < 0.4)

A hand-written Pratt parser turns the text into a tree (no ``eval``, no attribute access, no
names but fields, features and operators), ``compile_formula`` checks it against the operator
table of ``plugins.strategy._ops`` (arity, window literals, look-ahead) and ``Program.evaluate``
computes it over the whole ``T x N`` panel. Every error is one line naming the column of the
formula. The language lives apart from any one strategy because the expression strategy, the
ml strategy's ``expressions`` and the meta-labelling strategy's features all read it.

Grammar, loosest first: ``c ? a : b`` (right-associative), ``|``/``||``, ``&``/``&&``,
comparisons ``< <= > >= == !=``, ``+ -``, ``* /``, unary ``-``, ``^`` (power,
right-associative), then numbers, names and calls ``op(arg, ...)``.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Mapping, Optional

import numpy as np

from pipeline.core.errors import DataError
from pipeline.core.market import MarketData
from pipeline.core.params import suggest
from plugins.strategy import _ops

TOKEN = re.compile(r"\s*(?:(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_]\w*)"
                   r"|(?P<op><=|>=|==|!=|&&|\|\||[-+*/^<>()?:,&|]))")
BINARY = {"?": 1, "|": 2, "||": 2, "&": 3, "&&": 3, "<": 4, "<=": 4, ">": 4, ">=": 4, "==": 4,
          "!=": 4, "+": 5, "-": 5, "*": 6, "/": 6, "^": 8}
UNARY_POWER = 7
FIELDS = ("open", "high", "low", "close", "volume", "returns", "vwap")
ADV = re.compile(r"adv(\d+)$")


class FormulaError(ValueError):
    """A formula that cannot be computed, with the 1-based column where it goes wrong."""

    def __init__(self, message: str, formula: str, column: int, where: str = "formula") -> None:
        super().__init__(f"{where} {formula!r}, column {column}: {message}")


@dataclasses.dataclass(frozen=True)
class Node:
    kind: str                  # num | name | call | unary | binary | ternary
    value: object              # the number, the name, the operator
    args: tuple = ()
    col: int = dataclasses.field(default=1, compare=False)  # equal subexpressions share a value


# ---------------------------------------------------------------- parsing

class _Parser:
    def __init__(self, text: str, where: str) -> None:
        self.text, self.where = text, where
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                bad = len(text) - len(text[pos:].lstrip()) + 1
                char = text[bad - 1]
                why = "attribute access is not allowed" if char == "." else f"unexpected {char!r}"
                raise FormulaError(why, text, bad, where)
            kind = m.lastgroup
            self.tokens.append((kind, m.group(kind), m.start(kind) + 1))
            pos = m.end()
        self.tokens.append(("end", "", len(text) + 1))
        self.i = 0

    def error(self, message: str, col: Optional[int] = None) -> FormulaError:
        return FormulaError(message, self.text, self.peek()[2] if col is None else col, self.where)

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.i]

    def take(self) -> tuple[str, str, int]:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect(self, value: str) -> None:
        kind, text, col = self.take()
        if text != value or kind != "op":
            shown = "the end" if kind == "end" else repr(text)
            raise FormulaError(f"expected {value!r}, found {shown}", self.text, col, self.where)

    def parse(self) -> Node:
        if self.peek()[0] == "end":
            raise self.error("empty formula")
        node = self.expression(0)
        kind, text, col = self.peek()
        if kind != "end":
            raise FormulaError(f"unexpected {text!r}", self.text, col, self.where)
        return node

    def expression(self, power: int) -> Node:
        left = self.prefix()
        while True:
            kind, op, col = self.peek()
            if kind != "op" or op not in BINARY or BINARY[op] < power:
                return left
            self.take()
            if op == "?":
                yes = self.expression(0)
                self.expect(":")
                no = self.expression(BINARY["?"])
                left = Node("ternary", "?", (left, yes, no), col)
            else:
                right = self.expression(BINARY[op] + (op != "^"))  # ^ is right-associative
                left = Node("binary", op, (left, right), col)

    def prefix(self) -> Node:
        kind, text, col = self.take()
        if kind == "num":
            return Node("num", float(text), (), col)
        if kind == "name":
            if self.peek()[1] == "(" and self.peek()[0] == "op":
                self.take()
                args: list[Node] = []
                if self.peek()[1] != ")":
                    args.append(self.expression(0))
                    while self.peek()[1] == ",":
                        self.take()
                        args.append(self.expression(0))
                self.expect(")")
                return Node("call", text, tuple(args), col)
            return Node("name", text, (), col)
        if kind == "op" and text == "-":
            return Node("unary", "-", (self.expression(UNARY_POWER),), col)
        if kind == "op" and text == "+":
            return self.expression(UNARY_POWER)
        if kind == "op" and text == "(":
            node = self.expression(0)
            self.expect(")")
            return node
        raise FormulaError("unexpected end of formula" if kind == "end" else f"unexpected {text!r}",
                           self.text, col, self.where)


def parse(text: str, where: str = "formula") -> Node:
    """The syntax tree of ``text``; a FormulaError naming the column when it is not a formula."""
    if not isinstance(text, str):
        raise ValueError(f"{where}: expected a formula as text, got {text!r}")
    return _Parser(text, where).parse()


# ---------------------------------------------------------------- checking

@dataclasses.dataclass
class Program:
    """A checked formula: its tree with features inlined, the fields it reads and its warm-up
    (bars before its first defined value on data without gaps)."""

    text: str
    where: str
    tree: Node
    fields: frozenset
    warmup: int
    groups: bool

    def evaluate(self, data: MarketData, groups: Optional[np.ndarray] = None,
                 cache: Optional[dict] = None) -> np.ndarray:
        """The formula over the whole panel, ``T x N`` float64, NaN where undefined.

        ``cache`` shares subexpressions (features) between programs on the same data."""
        for name in sorted(self.fields):
            need = ("high", "low") if name == "vwap" else ("volume",) if ADV.match(name) else \
                ("close",) if name == "returns" else (name,)
            for field in need:
                if getattr(data, field) is None:
                    raise DataError(f"{self.where}: {self.text!r} reads {name!r} but the data "
                                    f"{data.name!r} has no {field}; use data with OHLCV "
                                    f"(data=stocks) or a formula over close")
        if self.groups and groups is None:
            raise DataError(f"{self.where}: {self.text!r} uses a group_ operator but no groups "
                            f"mapping was given")
        # without a shared cache only repeated subexpressions are kept, so the others' panels
        # are freed (and their pages reused) as soon as their parent has read them
        keep = None if cache is not None else _repeated(self.tree)
        memo = {} if cache is None else cache
        with np.errstate(all="ignore"):
            out = _evaluate(self.tree, data, groups, memo, keep)
        if np.ndim(out) == 0:
            out = np.full(data.close.shape, float(out))
        return np.where(np.isfinite(out), out, np.nan)


def compile_formula(text: str, features: Optional[Mapping[str, str]] = None,
                    where: str = "formula") -> Program:
    """Parse and check ``text``; ``features`` are named formulas it (and they) may use."""
    features = dict(features or {})
    for name in features:
        if name in FIELDS or ADV.match(name) or name in _ops.OPERATORS:
            raise ValueError(f"{where}: feature {name!r} shadows a field or operator; rename it")
    checked: dict[str, tuple[Node, frozenset, int, bool]] = {}

    def feature(name: str, stack: tuple) -> tuple[Node, frozenset, int, bool]:
        if name in stack:
            raise ValueError(f"{where}: features {' -> '.join(stack + (name,))} refer to each "
                             f"other in a cycle; one must be defined by fields only")
        if name not in checked:
            tree = parse(features[name], f"{where} feature {name!r}")
            checked[name] = _check(tree, features[name], f"{where} feature {name!r}",
                                   features, lambda n: feature(n, stack + (name,)))
        return checked[name]

    tree = parse(text, where)
    tree, fields, warmup, groups = _check(tree, text, where, features, lambda n: feature(n, ()))
    return Program(text, where, tree, fields, warmup, groups)


def _check(node: Node, text: str, where: str, features: Mapping[str, str], feature):
    """(tree with features inlined, fields read, warm-up, uses groups), or a FormulaError."""
    if node.kind == "num":
        return node, frozenset(), 0, False
    if node.kind == "name":
        name = str(node.value)
        adv = ADV.match(name)
        if name in FIELDS or adv:
            if adv and int(adv.group(1)) < 1:
                raise FormulaError(f"{name}: the window must be at least 1", text, node.col, where)
            warm = int(adv.group(1)) - 1 if adv else int(name == "returns")
            return node, frozenset([name]), warm, False
        if name in features:
            return feature(name)
        if name in _ops.OPERATORS:
            raise FormulaError(f"{name} is an operator: call it, {name}(...)", text, node.col, where)
        known = list(FIELDS) + ["adv20"] + sorted(features)
        raise FormulaError(f"unknown field {name!r} (fields: {', '.join(known)})"
                           f"{suggest(name, known + list(_ops.OPERATORS))}", text, node.col, where)
    if node.kind == "call":
        return _check_call(node, text, where, features, feature)
    parts = [_check(a, text, where, features, feature) for a in node.args]
    return (Node(node.kind, node.value, tuple(p[0] for p in parts), node.col),
            frozenset().union(*(p[1] for p in parts)), max(p[2] for p in parts),
            any(p[3] for p in parts))


def _check_call(node: Node, text: str, where: str, features, feature):
    name = str(node.value)
    op = _ops.OPERATORS.get(name)
    if op is None:
        raise FormulaError(f"unknown operator {name!r}{suggest(name, _ops.OPERATORS)}", text,
                           node.col, where)
    args = list(node.args)
    required = sum(1 for kind in op.args if not kind.endswith("?"))
    if not required <= len(args) <= len(op.args):
        count = str(required) if required == len(op.args) else f"{required} to {len(op.args)}"
        raise FormulaError(f"{name} takes {count} arguments ({op.signature}), got {len(args)}",
                           text, node.col, where)
    out, fields, warm, groups = [], frozenset(), 0, op.groups
    window = 0
    for arg, kind in zip(args, op.args):
        kind = kind.rstrip("?")
        if kind == "x":
            tree, f, w, g = _check(arg, text, where, features, feature)
            out.append(tree)
            fields, warm, groups = fields | f, max(warm, w), groups or g
            continue
        value = _literal(arg)
        if value is None:
            raise FormulaError(f"{name}: argument {len(out) + 1} must be a number written in the "
                               f"formula ({op.signature})", text, arg.col, where)
        if kind in ("window", "delay"):
            if value < 0:
                raise FormulaError(f"{name}: {kind} {value:g} is negative and would read the "
                                   f"future (look-ahead); use a positive number of bars",
                                   text, arg.col, where)
            if value != int(value) or (kind == "window" and value < op.min_window):
                raise FormulaError(f"{name}: {kind} {value:g} must be a whole number of bars >= "
                                   f"{op.min_window if kind == 'window' else 0}", text, arg.col, where)
            window = value = int(value)
        elif not op.limits[0] <= value < op.limits[1]:
            raise FormulaError(f"{name}: {value:g} is outside [{op.limits[0]:g}, {op.limits[1]:g})"
                               f" ({op.signature})", text, arg.col, where)
        out.append(Node("num", value, (), arg.col))
    warm += max(window - 1, 0) if op.kind == "window" else window if op.kind == "delay" else 0
    return Node("call", name, tuple(out), node.col), fields, warm, groups


def _literal(node: Node) -> Optional[float]:
    if node.kind == "num":
        return float(node.value)
    if node.kind == "unary" and node.args[0].kind == "num":
        return -float(node.args[0].value)
    return None


# ---------------------------------------------------------------- evaluation

def _repeated(tree: Node) -> frozenset:
    """The subexpressions that occur more than once in ``tree``."""
    seen, twice = set(), set()

    def walk(node: Node) -> None:
        if node in seen:
            twice.add(node)
            return
        seen.add(node)
        for arg in node.args:
            walk(arg)

    walk(tree)
    return frozenset(twice)


def _evaluate(node: Node, data: MarketData, groups, memo: dict, keep: Optional[frozenset]):
    """``node`` over the panel; ``memo`` keeps the values of the nodes in ``keep`` (of all
    nodes when ``keep`` is None)."""
    if node.kind == "num":
        return float(node.value)
    key = node
    if key in memo:
        return memo[key]
    if node.kind == "name":
        out = _ops.field(data, str(node.value))
    elif node.kind == "call":
        op = _ops.OPERATORS[str(node.value)]
        args = [a.value if kind.rstrip("?") != "x" else _evaluate(a, data, groups, memo, keep)
                for a, kind in zip(node.args, op.args)]
        args = [_ops.panel(a, data) if kind.rstrip("?") == "x" else a
                for a, kind in zip(args, op.args)]
        out = op.fn(*args, groups=groups) if op.groups else op.fn(*args)
    elif node.kind == "unary":
        out = -_evaluate(node.args[0], data, groups, memo, keep)
    elif node.kind == "ternary":
        c, a, b = (_evaluate(a, data, groups, memo, keep) for a in node.args)
        out = _ops.where(_ops.panel(c, data), _ops.panel(a, data), _ops.panel(b, data))
    else:
        a, b = (_evaluate(a, data, groups, memo, keep) for a in node.args)
        out = _ops.binary(str(node.value), a, b)
    if keep is None or key in keep:
        memo[key] = out
    return out
