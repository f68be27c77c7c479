"""The errors of the expression language: one base class, one subclass per phase.

::

    ExpressionError                  anything wrong with an expression (catch this one)
     +-- ExpressionSyntaxError       refused by compile_template / compile_expression: bad
     |                               syntax, a forbidden construct (T(...), new, @bean, =),
     |                               an unknown function or method, a compile-time limit
     +-- ExpressionEvaluationError   raised while evaluating against a context: null
                                     dereference, type mismatch, division by zero, invalid
                                     JSON content, a run-time limit

No other exception escapes ``compile_template``, ``compile_expression``, ``evaluate`` or
``Template.evaluate``, whatever the source text or the context: the evaluator converts
``RecursionError``, ``ValueError``, ``TypeError``, ``OverflowError``, ``MemoryError`` and
any other ``Exception`` raised by the caller's own objects (a ``Mapping`` or an
``el_properties()`` that fails) into these classes, with the original as ``__cause__``.
``BaseException``\\ s that are not ``Exception`` (``gevent.Timeout``, ``KeyboardInterrupt``,
``GeneratorExit``) are never swallowed.

``position`` is a 0-based offset into the *source string that was compiled* (for a
template, into the whole template, braces and text included), or ``None`` when no single
place is to blame. ``str(error)`` reads like ``unexpected token ')' at position 12``.
"""
from __future__ import annotations

from typing import Optional

__all__ = ["ExpressionError", "ExpressionSyntaxError", "ExpressionEvaluationError"]


class ExpressionError(Exception):
    """Base class of every error of the expression language.

    Attributes:
        message: what went wrong, without the position (``"unexpected token ')'"``).
        position: 0-based offset into the compiled source, or ``None``.
        source: the source text that was compiled, when known.
    """

    def __init__(self, message: str, position: Optional[int] = None,
                 source: Optional[str] = None) -> None:
        # All three go to args so that the exception pickles and copies faithfully.
        super().__init__(message, position, source)
        self.message = message
        self.position = position
        self.source = source

    def __str__(self) -> str:
        if self.position is None:
            return self.message
        return f"{self.message} at position {self.position}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, position={self.position!r})"


class ExpressionSyntaxError(ExpressionError):
    """The source is not a valid (or not an allowed) expression; raised at compile time."""


class ExpressionEvaluationError(ExpressionError):
    """Evaluating a compiled expression against a context failed."""
