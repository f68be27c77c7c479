"""Tokenizer of the expression language (see ``parser.py`` for the grammar).

The lexer also finds where a ``{expr}`` part of a template ends: it tokenizes from just
after the ``{`` and stops at the first ``}`` that closes no ``{`` of its own. Because it
knows string literals, ``{'a}' == #x}`` and inline lists/maps such as ``{ {1,2}.size() }``
end at the right brace.

Constructs that can never be valid (bean references ``@x``/``&x``, assignment ``=``,
increment ``++``/decrement ``--``, collection selection and projection ``.?[ .![ .^[ .$[``,
names that start with ``__``) are refused here with a message that says why.
"""
from __future__ import annotations

import re
from typing import Any

from .errors import ExpressionSyntaxError

__all__ = ["Token", "tokenize", "NUM", "STR", "IDENT", "VAR", "OP", "EOF",
           "MAX_INT", "MIN_INT"]

# Token kinds.
NUM = "number"
STR = "string"
IDENT = "identifier"
VAR = "variable"
OP = "operator"
EOF = "end of expression"

# Integers are 64-bit like Java's long: literals and arithmetic results outside this range
# are refused (Spring would overflow silently; a gateway should not).
MAX_INT = 2 ** 63 - 1
MIN_INT = -(2 ** 63)

_WHITESPACE = frozenset(" \t\r\n")
_IDENT_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_$")
_IDENT_CHARS = _IDENT_START | frozenset("0123456789")
_DIGITS = frozenset("0123456789")
_IDENT_RE = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
# ASCII digits only ([0-9], not \d, which would accept any Unicode digit).
_NUMBER_RE = re.compile(
    r"0[xX][0-9a-fA-F]+[lL]?"
    r"|(?P<float>(?:[0-9]+\.[0-9]+(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+)[dDfF]?"
    r"|[0-9]+[dDfF])"
    r"|[0-9]+[lL]?"
)

# Longest first. Everything the parser understands, nothing more.
_OPERATORS_2 = frozenset(["==", "!=", "<=", ">=", "&&", "||", "?.", "?:"])
_OPERATORS_1 = frozenset("()[]{},:.?<>!+-*/%")

_FORBIDDEN_3 = {
    ".?[": "collection selection (.?[...]) is not allowed",
    ".![": "collection projection (.![...]) is not allowed",
    ".^[": "collection selection (.^[...]) is not allowed",
    ".$[": "collection selection (.$[...]) is not allowed",
}
_FORBIDDEN_2 = {
    "++": "increment and decrement operators are not allowed",
    "--": "increment and decrement operators are not allowed",
}
_FORBIDDEN_1 = {
    "@": "bean references (@name) are not allowed",
    "&": "bean references (&name) are not allowed",
    "=": "assignment (=) is not allowed; use == to compare",
    "^": "the power operator (^) is not supported",
    "|": "unexpected character '|'; use || or 'or'",
}


class Token:
    """One token: its kind, its value and where it starts and ends in the source."""

    __slots__ = ("kind", "value", "pos", "end")

    def __init__(self, kind: str, value: Any, pos: int, end: int) -> None:
        self.kind = kind
        self.value = value
        self.pos = pos
        self.end = end

    def describe(self) -> str:
        """How an error message names this token: ``')'``, ``'foo'``, ``end of expression``."""
        if self.kind == EOF:
            return EOF
        if self.kind == STR:
            text = self.value if len(self.value) <= 20 else self.value[:17] + "..."
            return f"string {text!r}"
        if self.kind == VAR:
            return f"'#{self.value}'"
        return f"'{_short(self.value)}'"

    def __repr__(self) -> str:
        return f"Token({self.kind}, {self.value!r}, {self.pos})"


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 20 else text[:17] + "..."


def _error(message: str, pos: int, source: str) -> ExpressionSyntaxError:
    return ExpressionSyntaxError(message, pos, source)


def tokenize(source: str, start: int = 0, *, template: bool = False) -> tuple[list[Token], int]:
    """Split ``source[start:]`` into tokens.

    With ``template=False`` the whole rest of the source is one expression; the result ends
    with an EOF token at ``len(source)``. With ``template=True``, ``start`` is just after a
    ``{`` and tokenizing stops at the ``}`` that closes it: the EOF token sits at that
    brace, and the returned index is the brace's position.

    Returns ``(tokens, end)``. Raises ``ExpressionSyntaxError``.
    """
    tokens: list[Token] = []
    append = tokens.append
    n = len(source)
    i = start
    depth = 0  # unclosed '{' inside this expression (template mode)
    while True:
        # Skip whitespace.
        while i < n and source[i] in _WHITESPACE:
            i += 1
        if i >= n:
            if template:
                raise _error("missing '}' to close the expression", start - 1, source)
            append(Token(EOF, None, n, n))
            return tokens, n
        c = source[i]
        if c == "'" or c == '"':
            # Spring string literals: the quote is escaped by doubling it ('it''s'); there are
            # no backslash escapes. Search with str.find: linear, no regex backtracking.
            j = i + 1
            parts = []
            while True:
                k = source.find(c, j)
                if k < 0:
                    raise _error("unterminated string literal", i, source)
                parts.append(source[j:k])
                if k + 1 < n and source[k + 1] == c:
                    parts.append(c)
                    j = k + 2
                    continue
                break
            append(Token(STR, "".join(parts), i, k + 1))
            i = k + 1
            continue
        if c in _DIGITS:
            m = _NUMBER_RE.match(source, i)
            assert m is not None  # a digit always starts a number
            text = m.group()
            end = m.end()
            if end < n and (source[end] in _IDENT_CHARS):
                raise _error(f"invalid number literal '{_short(source[i:end + 1])}'", i, source)
            append(Token(NUM, _number_value(text, m.group("float") is not None, i, source),
                         i, end))
            i = end
            continue
        if c in _IDENT_START:
            m = _IDENT_RE.match(source, i)
            assert m is not None
            name = m.group()
            if name.startswith("__"):
                raise _error("names starting with '__' are not allowed", i, source)
            append(Token(IDENT, name, i, m.end()))
            i = m.end()
            continue
        if c == "#":
            m = _IDENT_RE.match(source, i + 1)
            if m is None:
                raise _error("expected a variable or function name after '#'", i, source)
            name = m.group()
            if name.startswith("__"):
                raise _error("names starting with '__' are not allowed", i, source)
            append(Token(VAR, name, i, m.end()))
            i = m.end()
            continue
        three = source[i:i + 3]
        if three in _FORBIDDEN_3:
            raise _error(_FORBIDDEN_3[three], i, source)
        two = source[i:i + 2]
        if two in _OPERATORS_2:
            append(Token(OP, two, i, i + 2))
            i += 2
            continue
        if two in _FORBIDDEN_2:
            raise _error(_FORBIDDEN_2[two], i, source)
        if c in _OPERATORS_1:
            if c == "{":
                depth += 1
            elif c == "}":
                if template and depth == 0:
                    append(Token(EOF, None, i, i))
                    return tokens, i
                depth -= 1
            append(Token(OP, c, i, i + 1))
            i += 1
            continue
        if c in _FORBIDDEN_1:
            raise _error(_FORBIDDEN_1[c], i, source)
        raise _error(f"unexpected character {c!r}", i, source)


def _number_value(text: str, is_float: bool, pos: int, source: str) -> int | float:
    if is_float or (text[-1] in "dDfF" and not text.lower().startswith("0x")):
        value = float(text.rstrip("dDfF"))
        if value != value or value in (float("inf"), float("-inf")):
            raise _error(f"number literal '{_short(text)}' is out of range", pos, source)
        return value
    digits = text.rstrip("lL")
    # Check the length before int(): int() of a huge digit string is slow (and refused
    # above 4300 digits by CPython).
    if len(digits) > 20:
        raise _error(f"integer literal '{_short(text)}' is too large", pos, source)
    value = int(digits, 16) if digits[:2] in ("0x", "0X") else int(digits)
    if value > MAX_INT:
        raise _error(f"integer literal '{_short(text)}' is too large", pos, source)
    return value
