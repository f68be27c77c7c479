"""The syntax tree produced by ``parser.py`` and compiled by ``evaluate.py``.

Every node knows ``pos``, its 0-based offset in the compiled source, so that evaluation
errors can say where they happened. ``str(node)`` is a fully parenthesized rendering,
used by the tests to check precedence and by humans to debug.

Chains of the same operator (``a + b - c``, ``a && b && c``) and of postfix accesses
(``#message.metadata['topic']``) are flat nodes evaluated with a loop, so the depth of
the tree measures real nesting only.
"""
from __future__ import annotations

from typing import Any, Iterator

__all__ = [
    "Node", "Literal", "ListLiteral", "MapLiteral", "Variable", "FunctionCall", "Chain",
    "PropertyStep", "IndexStep", "MethodStep", "Unary", "Arithmetic", "Logical",
    "Comparison", "Ternary", "Elvis", "walk",
]


def _lit(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    text = repr(value)
    if text.startswith("-"):
        return f"({text})"   # so that (-5).toString() and -0.0 read back the same
    return text


class Node:
    __slots__ = ("pos",)

    def children(self) -> Iterator["Node"]:
        return iter(())


class Literal(Node):
    __slots__ = ("value",)

    def __init__(self, value: Any, pos: int) -> None:
        self.value = value
        self.pos = pos

    def __str__(self) -> str:
        return _lit(self.value)


class ListLiteral(Node):
    __slots__ = ("items",)

    def __init__(self, items: list[Node], pos: int) -> None:
        self.items = items
        self.pos = pos

    def children(self) -> Iterator[Node]:
        return iter(self.items)

    def __str__(self) -> str:
        return "{" + ", ".join(map(str, self.items)) + "}"


class MapLiteral(Node):
    __slots__ = ("keys", "values")

    def __init__(self, keys: list[Any], values: list[Node], pos: int) -> None:
        self.keys = keys          # plain Python values (str/int/float/bool/None)
        self.values = values
        self.pos = pos

    def children(self) -> Iterator[Node]:
        return iter(self.values)

    def __str__(self) -> str:
        if not self.keys:
            return "{:}"
        return "{" + ", ".join(f"{_lit(k)}: {v}" for k, v in zip(self.keys, self.values)) + "}"


class Variable(Node):
    __slots__ = ("name",)

    def __init__(self, name: str, pos: int) -> None:
        self.name = name
        self.pos = pos

    def __str__(self) -> str:
        return "#" + self.name


class FunctionCall(Node):
    __slots__ = ("name", "args")

    def __init__(self, name: str, args: list[Node], pos: int) -> None:
        self.name = name
        self.args = args
        self.pos = pos

    def children(self) -> Iterator[Node]:
        return iter(self.args)

    def __str__(self) -> str:
        return f"#{self.name}(" + ", ".join(map(str, self.args)) + ")"


class PropertyStep:
    __slots__ = ("name", "safe", "pos")

    def __init__(self, name: str, safe: bool, pos: int) -> None:
        self.name = name
        self.safe = safe
        self.pos = pos

    def __str__(self) -> str:
        return ("?." if self.safe else ".") + self.name


class IndexStep:
    __slots__ = ("index", "safe", "pos")

    def __init__(self, index: Node, safe: bool, pos: int) -> None:
        self.index = index
        self.safe = safe
        self.pos = pos

    def __str__(self) -> str:
        return ("?." if self.safe else "") + f"[{self.index}]"


class MethodStep:
    __slots__ = ("name", "args", "safe", "pos")

    def __init__(self, name: str, args: list[Node], safe: bool, pos: int) -> None:
        self.name = name
        self.args = args
        self.safe = safe
        self.pos = pos

    def __str__(self) -> str:
        return ("?." if self.safe else ".") + self.name + "(" + ", ".join(map(str, self.args)) + ")"


class Chain(Node):
    """``base`` followed by property, index and method steps, left to right."""

    __slots__ = ("base", "steps")

    def __init__(self, base: Node, steps: list, pos: int) -> None:
        self.base = base
        self.steps = steps
        self.pos = pos

    def children(self) -> Iterator[Node]:
        yield self.base
        for step in self.steps:
            if isinstance(step, IndexStep):
                yield step.index
            elif isinstance(step, MethodStep):
                yield from step.args

    def __str__(self) -> str:
        # A parenthesized chain is its own unit: `(#a?.b).c` does not short-circuit `.c`.
        base = f"({self.base})" if isinstance(self.base, Chain) else str(self.base)
        return base + "".join(map(str, self.steps))


class Unary(Node):
    __slots__ = ("op", "operand")

    def __init__(self, op: str, operand: Node, pos: int) -> None:
        self.op = op              # '!', '-', '+'
        self.operand = operand
        self.pos = pos

    def children(self) -> Iterator[Node]:
        yield self.operand

    def __str__(self) -> str:
        return f"({self.op}{self.operand})"


class Arithmetic(Node):
    """``first op1 x1 op2 x2 ...`` of one precedence level, folded left to right."""

    __slots__ = ("first", "rest")

    def __init__(self, first: Node, rest: list[tuple[str, int, Node]], pos: int) -> None:
        self.first = first
        self.rest = rest          # (op, position of the operator, operand)
        self.pos = pos

    def children(self) -> Iterator[Node]:
        yield self.first
        for _, _, node in self.rest:
            yield node

    def __str__(self) -> str:
        text = str(self.first)
        for op, _, node in self.rest:
            text = f"({text} {op} {node})"
        return text


class Logical(Node):
    __slots__ = ("op", "operands")

    def __init__(self, op: str, operands: list[Node], pos: int) -> None:
        self.op = op              # 'and' / 'or'
        self.operands = operands
        self.pos = pos

    def children(self) -> Iterator[Node]:
        return iter(self.operands)

    def __str__(self) -> str:
        sym = " && " if self.op == "and" else " || "
        return "(" + sym.join(map(str, self.operands)) + ")"


class Comparison(Node):
    __slots__ = ("op", "left", "right")

    def __init__(self, op: str, left: Node, right: Node, pos: int) -> None:
        self.op = op              # '==', '!=', '<', '<=', '>', '>=', 'matches'
        self.left = left
        self.right = right
        self.pos = pos

    def children(self) -> Iterator[Node]:
        yield self.left
        yield self.right

    def __str__(self) -> str:
        return f"({self.left} {self.op} {self.right})"


class Ternary(Node):
    __slots__ = ("condition", "then", "otherwise")

    def __init__(self, condition: Node, then: Node, otherwise: Node, pos: int) -> None:
        self.condition = condition
        self.then = then
        self.otherwise = otherwise
        self.pos = pos

    def children(self) -> Iterator[Node]:
        yield self.condition
        yield self.then
        yield self.otherwise

    def __str__(self) -> str:
        return f"({self.condition} ? {self.then} : {self.otherwise})"


class Elvis(Node):
    __slots__ = ("value", "default")

    def __init__(self, value: Node, default: Node, pos: int) -> None:
        self.value = value
        self.default = default
        self.pos = pos

    def children(self) -> Iterator[Node]:
        yield self.value
        yield self.default

    def __str__(self) -> str:
        return f"({self.value} ?: {self.default})"


def walk(node: Node) -> Iterator[Node]:
    """Every node of the tree, depth first, without recursion (the tree may be deep)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(current.children())
