"""Compile syntax trees to Python closures once; evaluate them many times.

Each node becomes one closure ``fn(scope) -> value``; chains of accesses and runs of one
operator are loops inside a single closure. Literal arguments that can be prepared ahead
(a JSON path, a regular expression) are prepared here, at compile (deploy) time, and
errors in them are syntax errors with the literal's position.

Public API (re-exported by ``evgate.el``)::

    compile_template(source: str) -> Template
    compile_expression(source: str) -> Template
    evaluate(source: str, context: Mapping[str, Any], *, cache: dict | None = None) -> Any
    Template.evaluate(context: Mapping[str, Any], *, cache: dict | None = None) -> Any
    Template.source: str, Template.is_constant: bool, Template.variables: frozenset[str]
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable, Mapping, Optional

from . import ast
from .errors import ExpressionError, ExpressionEvaluationError, ExpressionSyntaxError
from .functions import (
    ARITHMETIC, COMPARISONS, FUNCTIONS, MAX_STRING_LENGTH, InvalidArgument, Scope,
    call_method, compile_regex, el_equals, regex_for, get_index, get_property, negate,
    ordering_operands, template_text, type_name, unary_plus,
)
from .parser import parse_expression, parse_template

__all__ = ["Template", "compile_template", "compile_expression", "evaluate"]

Closure = Callable[[Scope], Any]
_EMPTY: Mapping[str, Any] = {}


def _fail(message: str, pos: Optional[int]) -> ExpressionEvaluationError:
    return ExpressionEvaluationError(message, pos)


class _Compiler:
    def __init__(self, source: str) -> None:
        self.source = source

    def syntax_error(self, message: str, pos: int) -> ExpressionSyntaxError:
        return ExpressionSyntaxError(message, pos, self.source)

    def compile(self, node: ast.Node) -> Closure:
        return _DISPATCH[type(node)](self, node)

    # -- leaves --------------------------------------------------------------------------

    def _Literal(self, node: ast.Literal) -> Closure:
        value = node.value
        return lambda scope: value

    def _Variable(self, node: ast.Variable) -> Closure:
        name = node.name

        def variable(scope: Scope) -> Any:
            return scope.variables.get(name)
        return variable

    def _ListLiteral(self, node: ast.ListLiteral) -> Closure:
        items = [self.compile(item) for item in node.items]
        if all(isinstance(item, ast.Literal) for item in node.items):
            values = [item.value for item in node.items]
            return lambda scope: list(values)   # a fresh list: callers may keep it
        return lambda scope: [item(scope) for item in items]

    def _MapLiteral(self, node: ast.MapLiteral) -> Closure:
        pairs = [(key, self.compile(value)) for key, value in zip(node.keys, node.values)]
        return lambda scope: {key: value(scope) for key, value in pairs}

    def _FunctionCall(self, node: ast.FunctionCall) -> Closure:
        function = FUNCTIONS[node.name]
        impl = function.impl
        pos = node.pos
        args: list[Closure] = []
        for index, arg in enumerate(node.args):
            prepare = function.prepare.get(index)
            if prepare is not None and isinstance(arg, ast.Literal):
                try:
                    prepared = prepare(arg.value)
                except InvalidArgument as exc:
                    raise self.syntax_error(f"#{node.name}: {exc}", arg.pos) from None
                args.append(lambda scope, value=prepared: value)
            else:
                args.append(self.compile(arg))
        if len(args) == 2:
            first, second = args

            def call2(scope: Scope) -> Any:
                return impl(scope, pos, first(scope), second(scope))
            return call2

        def call(scope: Scope) -> Any:
            return impl(scope, pos, *[arg(scope) for arg in args])
        return call

    # -- accesses ------------------------------------------------------------------------

    def _Chain(self, node: ast.Chain) -> Closure:
        base = self.compile(node.base)
        steps = [self._step(step) for step in node.steps]
        if len(steps) == 1:
            only = steps[0]

            def chain1(scope: Scope) -> Any:
                value = only(base(scope), scope)
                return None if value is _SHORT else value
            return chain1

        def chain(scope: Scope) -> Any:
            value = base(scope)
            for step in steps:
                value = step(value, scope)
                if value is _SHORT:   # a ?. met null: the whole chain is null
                    return None
            return value
        return chain

    def _step(self, step: Any) -> Callable[[Any, Scope], Any]:
        pos = step.pos
        safe = step.safe
        if isinstance(step, ast.PropertyStep):
            name = step.name

            def prop(value: Any, scope: Scope) -> Any:
                if type(value) is dict:
                    return value.get(name)
                if value is None and safe:
                    return _SHORT
                return get_property(value, name, pos)
            return prop
        if isinstance(step, ast.IndexStep):
            index = self.compile(step.index)

            def item(value: Any, scope: Scope) -> Any:
                if value is None and safe:
                    return _SHORT
                return get_index(value, index(scope), pos)
            return item
        name = step.name
        args = [self._method_argument(name, i, arg) for i, arg in enumerate(step.args)]

        def method(value: Any, scope: Scope) -> Any:
            if value is None and safe:
                return _SHORT
            return call_method(value, name, [arg(scope) for arg in args], pos)
        return method

    def _method_argument(self, name: str, index: int, arg: ast.Node) -> Closure:
        if name in ("matches", "split") and index == 0 and isinstance(arg, ast.Literal) \
                and isinstance(arg.value, str):
            regex = self._regex(arg)
            return lambda scope: regex
        return self.compile(arg)

    def _regex(self, literal: ast.Literal) -> Any:
        try:
            return compile_regex(literal.value)
        except InvalidArgument as exc:
            raise self.syntax_error(str(exc), literal.pos) from None

    # -- operators -----------------------------------------------------------------------

    def _Unary(self, node: ast.Unary) -> Closure:
        operand = self.compile(node.operand)
        pos = node.pos
        if node.op == "!":
            def not_(scope: Scope) -> Any:
                value = operand(scope)
                if value is True:
                    return False
                if value is False:
                    return True
                raise _fail(f"'!' needs a boolean, got {type_name(value)}", pos)
            return not_
        if node.op == "-":
            return lambda scope: negate(operand(scope), pos)
        return lambda scope: unary_plus(operand(scope), pos)

    def _Arithmetic(self, node: ast.Arithmetic) -> Closure:
        first = self.compile(node.first)
        rest = [(ARITHMETIC[op], pos, self.compile(operand)) for op, pos, operand in node.rest]
        if len(rest) == 1:
            (function, pos, second), = rest
            return lambda scope: function(first(scope), second(scope), pos)

        def arithmetic(scope: Scope) -> Any:
            value = first(scope)
            for function, pos, operand in rest:
                value = function(value, operand(scope), pos)
            return value
        return arithmetic

    def _Logical(self, node: ast.Logical) -> Closure:
        operands = [(self.compile(operand), operand.pos) for operand in node.operands]
        word = "&&" if node.op == "and" else "||"
        # and: stop at the first false; or: stop at the first true.
        stop = node.op == "or"

        def logical(scope: Scope) -> Any:
            for operand, pos in operands:
                value = operand(scope)
                if value is stop:
                    return stop
                if value is not (not stop):
                    raise _fail(f"operands of '{word}' must be booleans, got "
                                f"{type_name(value)}", pos)
            return not stop
        return logical

    def _Comparison(self, node: ast.Comparison) -> Closure:
        left = self.compile(node.left)
        pos = node.pos
        op = node.op
        if op == "matches":
            if isinstance(node.right, ast.Literal) and isinstance(node.right.value, str):
                regex = self._regex(node.right)
                return lambda scope: regex.fullmatch(left(scope), pos)
            right = self.compile(node.right)

            def matches(scope: Scope) -> bool:
                subject = left(scope)
                pattern = right(scope)
                return regex_for(pattern, pos).fullmatch(subject, pos)
            return matches
        right = self.compile(node.right)
        if op == "==":
            return lambda scope: el_equals(left(scope), right(scope))
        if op == "!=":
            return lambda scope: not el_equals(left(scope), right(scope))
        compare = COMPARISONS[op]

        def ordering(scope: Scope) -> bool:
            a, b = ordering_operands(left(scope), right(scope), op, pos)
            return compare(a, b)
        return ordering

    def _Ternary(self, node: ast.Ternary) -> Closure:
        condition = self.compile(node.condition)
        then = self.compile(node.then)
        otherwise = self.compile(node.otherwise)
        pos = node.condition.pos

        def ternary(scope: Scope) -> Any:
            value = condition(scope)
            if value is True:
                return then(scope)
            if value is False:
                return otherwise(scope)
            raise _fail(f"the condition of '?:' must be a boolean, got {type_name(value)}", pos)
        return ternary

    def _Elvis(self, node: ast.Elvis) -> Closure:
        value_fn = self.compile(node.value)
        default = self.compile(node.default)

        def elvis(scope: Scope) -> Any:
            value = value_fn(scope)
            # Spring: null and the empty string fall back to the default.
            if value is None or (type(value) is str and not value):
                return default(scope)
            return value
        return elvis


_SHORT = object()  # marker: a null-safe step met null

_DISPATCH: dict[type, Callable[[_Compiler, Any], Closure]] = {
    ast.Literal: _Compiler._Literal,
    ast.Variable: _Compiler._Variable,
    ast.ListLiteral: _Compiler._ListLiteral,
    ast.MapLiteral: _Compiler._MapLiteral,
    ast.FunctionCall: _Compiler._FunctionCall,
    ast.Chain: _Compiler._Chain,
    ast.Unary: _Compiler._Unary,
    ast.Arithmetic: _Compiler._Arithmetic,
    ast.Logical: _Compiler._Logical,
    ast.Comparison: _Compiler._Comparison,
    ast.Ternary: _Compiler._Ternary,
    ast.Elvis: _Compiler._Elvis,
}


def _is_constant(node: ast.Node) -> bool:
    return not any(isinstance(n, (ast.Variable, ast.FunctionCall)) for n in ast.walk(node))


def _variables(node: ast.Node) -> set[str]:
    return {n.name for n in ast.walk(node) if isinstance(n, ast.Variable)}


def _contain(exc: BaseException, source: str) -> ExpressionError:
    """Any failure inside compile or evaluate as an ExpressionError (see errors.py)."""
    if isinstance(exc, ExpressionError):
        if exc.source is None:
            exc.source = source
        return exc
    if isinstance(exc, RecursionError):
        return ExpressionEvaluationError("expression or data nested too deeply", None, source)
    if isinstance(exc, MemoryError):
        return ExpressionEvaluationError("out of memory while evaluating", None, source)
    return ExpressionEvaluationError(f"evaluation failed: {type(exc).__name__}: {exc}",
                                     None, source)


class Template:
    """A compiled template or expression. Immutable and thread-safe: compile once (at
    deploy time), evaluate from any greenlet or thread.

    ``evaluate(context)`` returns the value of the expression, with its type, when the
    source is exactly one ``{expr}`` (or a bare expression); otherwise the concatenation
    of the text and the parts rendered as text (null renders as nothing).
    """

    __slots__ = ("source", "is_constant", "variables", "_run", "_parts", "_constant",
                 "_has_constant")

    def __init__(self, source: str, parts: list, is_constant: bool, variables: frozenset):
        self.source = source
        self.is_constant = is_constant
        self.variables = variables
        self._parts = parts
        self._has_constant = False
        self._constant: Any = None
        if len(parts) == 1 and not isinstance(parts[0], str):
            self._run = parts[0]
        elif all(isinstance(p, str) for p in parts):
            text = "".join(parts)
            self._run = lambda scope: text
        else:
            self._run = self._concatenate
        if is_constant:
            # Fold: evaluate once now. Only immutable results are kept (a list would be
            # shared by every caller); an error is left to happen at evaluation.
            try:
                value = self._run(Scope(_EMPTY))
            except Exception:   # noqa: BLE001 - re-raised properly by evaluate()
                pass
            else:
                if value is None or type(value) in (str, int, float, bool):
                    self._constant = value
                    self._has_constant = True

    def _concatenate(self, scope: Scope) -> str:
        pieces = []
        size = 0
        for part in self._parts:
            text = part if isinstance(part, str) else template_text(part(scope))
            size += len(text)
            if size > MAX_STRING_LENGTH:
                raise ExpressionEvaluationError(
                    f"template result too large (more than {MAX_STRING_LENGTH} characters)",
                    None, self.source)
            pieces.append(text)
        return "".join(pieces)

    def evaluate(self, context: Optional[Mapping[str, Any]] = None, *,
                 cache: Optional[dict] = None) -> Any:
        """Evaluate against ``context`` (variable name -> value, without the ``#``).

        ``cache``: optionally a dict to reuse across evaluations over the same objects
        (e.g. one message through many filters) so that each JSON content is parsed once;
        by default each evaluation has its own. Raises ``ExpressionEvaluationError``.
        """
        if self._has_constant:
            return self._constant
        try:
            return self._run(Scope(_EMPTY if context is None else context, cache))
        except Exception as exc:  # noqa: BLE001 - see errors.py: only ExpressionError escapes
            raise _contain(exc, self.source) from (None if isinstance(exc, ExpressionError)
                                                   else exc)

    def __repr__(self) -> str:
        return f"Template({self.source!r})"


def _build(source: str, parts: list) -> Template:
    compiler = _Compiler(source)
    compiled: list = []
    constant = True
    variables: set[str] = set()
    for part in parts:
        if isinstance(part, str):
            compiled.append(part)
        else:
            compiled.append(compiler.compile(part))
            constant = constant and _is_constant(part)
            variables |= _variables(part)
    return Template(source, compiled, constant, frozenset(variables))


def _compile(source: str, template: bool) -> Template:
    try:
        parts = parse_template(source) if template else [parse_expression(source)]
        return _build(source, parts)
    except ExpressionError as exc:
        if exc.source is None and isinstance(source, str):
            exc.source = source
        raise
    except (RecursionError, MemoryError, ValueError, TypeError, OverflowError) as exc:
        raise ExpressionSyntaxError(f"cannot compile expression: {type(exc).__name__}",
                                    None, source if isinstance(source, str) else None
                                    ) from exc


def compile_template(source: str) -> Template:
    """Compile a template: text with ``{expression}`` parts (``"kafka://{#a}/x"``).
    A source without braces is constant text. Raises ``ExpressionSyntaxError``."""
    return _compile(source, True)


def compile_expression(source: str) -> Template:
    """Compile a bare expression without braces (``"#a == 1"``); ``{...}`` in it is an
    inline list or map. Raises ``ExpressionSyntaxError``."""
    return _compile(source, False)


@lru_cache(maxsize=1024)
def _cached(source: str) -> tuple[Optional[Template], Optional[tuple]]:
    try:
        return compile_template(source), None
    except ExpressionError as exc:
        # Keep the error's parts, not the exception: re-raising one instance would grow
        # its traceback on every call.
        return None, (type(exc), exc.message, exc.position)


def evaluate(source: str, context: Optional[Mapping[str, Any]] = None, *,
             cache: Optional[dict] = None) -> Any:
    """Compile (with an LRU cache of 1024 templates) and evaluate a template.
    Raises ``ExpressionError`` (syntax or evaluation)."""
    if not isinstance(source, str):
        raise ExpressionSyntaxError(
            f"an expression must be a string, not {type(source).__name__}", None, None)
    template, error = _cached(source)
    if template is None:
        error_type, message, position = error  # type: ignore[misc]
        raise error_type(message, position, source)
    return template.evaluate(context, cache=cache)
