"""Parser of evgate's expression language: a safe subset of Spring EL, as used by Gravitee.

Two entry points: ``parse_template`` for text with ``{expr}`` parts (what API definitions
contain: ``kafka://{#message.metadata['topic']}/x``), and ``parse_expression`` for a bare
expression (``#a == 1``). Both return syntax trees (``ast.py``), compiled to closures by
``evaluate.py``. This is a hand-written recursive-descent parser with precedence climbing
over the binary operators; it never calls ``eval``, ``exec`` or ``compile``.

Grammar (EBNF; keywords are case-insensitive, like Spring's)::

    template    = { text | "{" expression "}" } ;
    text        = any characters except "{" ;            (* a lone "}" is text *)

    expression  = or_expr [ "?:" expression                (* elvis *)
                          | "?" expression ":" expression ] ;   (* ternary *)
    or_expr     = and_expr { ( "||" | "or" ) and_expr } ;
    and_expr    = rel_expr { ( "&&" | "and" ) rel_expr } ;
    rel_expr    = sum [ rel_op sum ] ;                     (* never chained: a<b<c is refused *)
    rel_op      = "==" | "!=" | "<" | "<=" | ">" | ">="
                | "eq" | "ne" | "lt" | "le" | "gt" | "ge" | "matches" ;
    sum         = product { ( "+" | "-" ) product } ;
    product     = unary { ( "*" | "/" | "%" | "div" | "mod" ) unary } ;
    unary       = ( "!" | "not" | "-" | "+" ) unary | postfix ;
    postfix     = primary { step } ;
    step        = ( "." | "?." ) NAME [ arguments ]          (* property or method call *)
                | [ "?." ] "[" expression "]" ;            (* index or key *)
    primary     = NUMBER | STRING | "true" | "false" | "null"
                | VARIABLE                                 (* #name *)
                | FUNCTION arguments                       (* #name( : a registered function *)
                | "(" expression ")"
                | "{" [ expression { "," expression } ] "}"          (* inline list *)
                | "{" ":" "}"                                         (* empty map *)
                | "{" key ":" expression { "," key ":" expression } "}" ;  (* inline map *)
    key         = NAME | STRING | NUMBER ;
    arguments   = "(" [ expression { "," expression } ] ")" ;

    NAME        = ( letter | "_" | "$" ) { letter | digit | "_" | "$" } ;   (* ASCII *)
    VARIABLE    = "#" NAME ;
    STRING      = "'" { char | "''" } "'" | '"' { char | '""' } '"' ;  (* no backslash escapes *)
    NUMBER      = digits [ "L" ] | "0x" hexdigits [ "L" ]
                | digits "." digits [ exponent ] [ "d" | "f" ] | digits exponent [ "d" | "f" ] ;

Refused with a message that names the construct: type references ``T(...)``,
constructors ``new``, bean references ``@x``/``&x``, assignment ``=``, ``++``/``--``,
collection selection and projection (``.?[``, ``.![``, ``.^[``, ``.$[``), ``instanceof``,
``between``, ``^``, bare names (Spring's root-object properties), names starting with
``__``, methods that no type has (``getClass``), unknown functions, and ``[1, 2]`` list
literals (Spring writes lists as ``{1, 2}``).

Limits, checked here without relying on Python's recursion limit:
``MAX_SOURCE_LENGTH`` characters of source, ``MAX_DEPTH`` levels of nesting (both of the
parser's own recursion and of the resulting tree, which bounds the evaluator's
recursion), ``MAX_NODES`` nodes in a template (the language has no loops, so this also
bounds the steps of one evaluation), ``MAX_LIST_LITERAL`` items in an inline list or map.
"""
from __future__ import annotations

from typing import Optional, Union

from . import ast
from .errors import ExpressionSyntaxError
from .functions import FUNCTIONS, METHOD_ARITIES
from .lexer import EOF, IDENT, NUM, OP, STR, VAR, Token, tokenize

__all__ = ["parse_expression", "parse_template", "TemplatePart", "MAX_SOURCE_LENGTH",
           "MAX_DEPTH", "MAX_NODES", "MAX_LIST_LITERAL"]

MAX_SOURCE_LENGTH = 10_000
MAX_DEPTH = 64
MAX_NODES = 2_000
MAX_LIST_LITERAL = 1_000

# A template is a list of literal text and expression trees.
TemplatePart = Union[str, ast.Node]

_KEYWORD_OPERATORS = {
    "and": "&&", "or": "||", "not": "!", "eq": "==", "ne": "!=", "lt": "<", "le": "<=",
    "gt": ">", "ge": ">=", "div": "/", "mod": "%", "matches": "matches",
}
_RELATIONAL = frozenset(["==", "!=", "<", "<=", ">", ">=", "matches"])
# Binding power of the binary operators (higher binds tighter).
_PRECEDENCE = {
    "||": 1,
    "&&": 2,
    "==": 3, "!=": 3, "<": 3, "<=": 3, ">": 3, ">=": 3, "matches": 3,
    "+": 4, "-": 4,
    "*": 5, "/": 5, "%": 5,
}
_UNSUPPORTED_OPERATORS = {
    "instanceof": "the 'instanceof' operator is not supported",
    "between": "the 'between' operator is not supported",
}


class _Parser:
    __slots__ = ("tokens", "index", "source", "depth", "tok")

    def __init__(self, tokens: list[Token], source: str) -> None:
        self.tokens = tokens
        self.index = 0
        self.source = source
        self.depth = 0
        self.tok = tokens[0]

    # -- helpers -------------------------------------------------------------------------

    def error(self, message: str, pos: int) -> ExpressionSyntaxError:
        return ExpressionSyntaxError(message, pos, self.source)

    def unexpected(self, tok: Optional[Token] = None) -> ExpressionSyntaxError:
        tok = tok or self.tok
        if tok.kind == EOF:
            return self.error("unexpected end of expression", tok.pos)
        return self.error(f"unexpected token {tok.describe()}", tok.pos)

    def advance(self) -> Token:
        tok = self.tok
        self.index += 1
        self.tok = self.tokens[self.index] if self.index < len(self.tokens) else tok
        return tok

    def peek(self, offset: int = 1) -> Token:
        i = self.index + offset
        return self.tokens[i] if i < len(self.tokens) else self.tokens[-1]

    def is_op(self, value: str, tok: Optional[Token] = None) -> bool:
        tok = tok or self.tok
        return tok.kind == OP and tok.value == value

    def expect_op(self, value: str) -> Token:
        if not self.is_op(value):
            if self.tok.kind == EOF:
                raise self.error(f"expected '{value}' but the expression ended", self.tok.pos)
            raise self.error(f"expected '{value}' but found {self.tok.describe()}",
                             self.tok.pos)
        return self.advance()

    def enter(self, pos: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"expression nested too deeply (more than {MAX_DEPTH} levels)",
                             pos)

    def binary_operator(self) -> Optional[str]:
        """The binary operator at the current token, if any (symbol or keyword)."""
        tok = self.tok
        if tok.kind == OP:
            return tok.value if tok.value in _PRECEDENCE else None
        if tok.kind == IDENT:
            word = tok.value.lower()
            if word in _UNSUPPORTED_OPERATORS:
                raise self.error(_UNSUPPORTED_OPERATORS[word], tok.pos)
            op = _KEYWORD_OPERATORS.get(word)
            if op is not None and op in _PRECEDENCE:
                return op
        return None

    # -- grammar -------------------------------------------------------------------------

    def parse(self) -> ast.Node:
        node = self.expression()
        if self.tok.kind != EOF:
            raise self.unexpected()
        return node

    def expression(self) -> ast.Node:
        self.enter(self.tok.pos)
        node = self.binary(1)
        if self.is_op("?:"):
            pos = self.advance().pos
            node = ast.Elvis(node, self.expression(), pos)
        elif self.is_op("?"):
            pos = self.advance().pos
            then = self.expression()
            self.expect_op(":")
            node = ast.Ternary(node, then, self.expression(), pos)
        self.depth -= 1
        return node

    def binary(self, min_precedence: int) -> ast.Node:
        """Precedence climbing; runs of one level become one flat node."""
        left = self.unary()
        level_node: Optional[ast.Node] = None   # the flat node this loop is building
        while True:
            op = self.binary_operator()
            if op is None:
                return left
            precedence = _PRECEDENCE[op]
            if precedence < min_precedence:
                return left
            op_tok = self.advance()
            if op in _RELATIONAL and isinstance(level_node, ast.Comparison) \
                    and level_node is left:
                raise self.error("comparison operators cannot be chained; "
                                 "use parentheses and &&", op_tok.pos)
            right = self.binary(precedence + 1)
            if op == "||" or op == "&&":
                kind = "or" if op == "||" else "and"
                if isinstance(left, ast.Logical) and left is level_node and left.op == kind:
                    left.operands.append(right)
                else:
                    left = ast.Logical(kind, [left, right], op_tok.pos)
            elif op in _RELATIONAL:
                left = ast.Comparison(op, left, right, op_tok.pos)
            else:
                if isinstance(left, ast.Arithmetic) and left is level_node \
                        and _PRECEDENCE[left.rest[0][0]] == precedence:
                    left.rest.append((op, op_tok.pos, right))
                else:
                    left = ast.Arithmetic(left, [(op, op_tok.pos, right)], op_tok.pos)
            level_node = left

    def unary(self) -> ast.Node:
        tok = self.tok
        op = None
        if tok.kind == OP and tok.value in ("!", "-", "+"):
            op = tok.value
        elif tok.kind == IDENT and tok.value.lower() == "not":
            op = "!"
        if op is None:
            return self.postfix()
        self.advance()
        self.enter(tok.pos)
        operand = self.unary()
        self.depth -= 1
        if op == "-" and isinstance(operand, ast.Literal) and type(operand.value) in (int, float):
            return ast.Literal(-operand.value, tok.pos)
        return ast.Unary(op, operand, tok.pos)

    def postfix(self) -> ast.Node:
        node = self.primary()
        steps: list = []
        while True:
            tok = self.tok
            if tok.kind != OP:
                break
            if tok.value == "." or tok.value == "?.":
                safe = tok.value == "?."
                self.advance()
                if safe and self.is_op("["):
                    self.advance()
                    steps.append(ast.IndexStep(self.expression(), True, tok.pos))
                    self.expect_op("]")
                    continue
                name_tok = self.tok
                if name_tok.kind != IDENT:
                    if name_tok.kind == EOF:
                        raise self.error("expected a property or method name after "
                                         f"'{tok.value}'", name_tok.pos)
                    raise self.error("expected a property or method name after "
                                     f"'{tok.value}' but found {name_tok.describe()}",
                                     name_tok.pos)
                self.advance()
                if self.is_op("("):
                    args = self.arguments()
                    self.check_method(name_tok, len(args))
                    steps.append(ast.MethodStep(name_tok.value, args, safe, name_tok.pos))
                else:
                    steps.append(ast.PropertyStep(name_tok.value, safe, name_tok.pos))
            elif tok.value == "[":
                self.advance()
                steps.append(ast.IndexStep(self.expression(), False, tok.pos))
                self.expect_op("]")
            else:
                break
        if steps:
            return ast.Chain(node, steps, node.pos)
        return node

    def check_method(self, name_tok: Token, count: int) -> None:
        arities = METHOD_ARITIES.get(name_tok.value)
        if arities is None:
            raise self.error(f"unknown method '{name_tok.value}'", name_tok.pos)
        if count not in arities:
            allowed = " or ".join(str(n) for n in sorted(arities))
            raise self.error(f"method '{name_tok.value}' takes {allowed} argument(s), "
                             f"got {count}", name_tok.pos)

    def arguments(self) -> list[ast.Node]:
        open_tok = self.expect_op("(")
        args: list[ast.Node] = []
        if self.is_op(")"):
            self.advance()
            return args
        while True:
            args.append(self.expression())
            if len(args) > MAX_LIST_LITERAL:
                raise self.error("too many arguments", open_tok.pos)
            if self.is_op(","):
                self.advance()
                continue
            self.expect_op(")")
            return args

    def primary(self) -> ast.Node:
        tok = self.tok
        kind = tok.kind
        if kind == NUM or kind == STR:
            self.advance()
            return ast.Literal(tok.value, tok.pos)
        if kind == VAR:
            self.advance()
            if self.is_op("("):
                function = FUNCTIONS.get(tok.value)
                if function is None:
                    raise self.error(f"unknown function '#{tok.value}'", tok.pos)
                args = self.arguments()
                if not function.min_args <= len(args) <= function.max_args:
                    expected = (str(function.min_args) if function.min_args == function.max_args
                                else f"{function.min_args} to {function.max_args}")
                    raise self.error(f"function '#{tok.value}' takes {expected} argument(s), "
                                     f"got {len(args)}", tok.pos)
                return ast.FunctionCall(tok.value, args, tok.pos)
            return ast.Variable(tok.value, tok.pos)
        if kind == IDENT:
            return self.word(tok)
        if kind == OP:
            if tok.value == "(":
                self.advance()
                node = self.expression()
                self.expect_op(")")
                return node
            if tok.value == "{":
                return self.inline_collection()
            if tok.value == "[":
                raise self.error("list literals are written with braces in Spring EL: "
                                 "{1, 2}", tok.pos)
        raise self.unexpected()

    def word(self, tok: Token) -> ast.Node:
        word = tok.value.lower()
        if word in ("true", "false", "null"):
            self.advance()
            return ast.Literal({"true": True, "false": False, "null": None}[word], tok.pos)
        if tok.value == "T" and self.is_op("(", self.peek()):
            raise self.error("type references (T(...)) are not allowed", tok.pos)
        if word == "new":
            raise self.error("constructors (new) are not allowed", tok.pos)
        if word in _KEYWORD_OPERATORS or word in _UNSUPPORTED_OPERATORS:
            raise self.unexpected()
        if self.is_op("(", self.peek()):
            raise self.error(f"unknown function '{tok.value}' (functions are written "
                             f"#{tok.value}(...))", tok.pos)
        raise self.error(f"unknown name '{tok.value}' (variables are written #{tok.value})",
                         tok.pos)

    def inline_collection(self) -> ast.Node:
        open_tok = self.advance()  # '{'
        if self.is_op("}"):
            self.advance()
            return ast.ListLiteral([], open_tok.pos)
        if self.is_op(":") and self.is_op("}", self.peek()):
            self.advance()
            self.advance()
            return ast.MapLiteral([], [], open_tok.pos)
        if self.tok.kind in (IDENT, STR, NUM) and self.is_op(":", self.peek()):
            return self.inline_map(open_tok)
        items: list[ast.Node] = []
        while True:
            items.append(self.expression())
            if len(items) > MAX_LIST_LITERAL:
                raise self.error(f"inline list longer than {MAX_LIST_LITERAL} items",
                                 open_tok.pos)
            if self.is_op(","):
                self.advance()
                continue
            self.expect_op("}")
            return ast.ListLiteral(items, open_tok.pos)

    def inline_map(self, open_tok: Token) -> ast.Node:
        keys: list = []
        values: list[ast.Node] = []
        while True:
            key_tok = self.tok
            if key_tok.kind not in (IDENT, STR, NUM):
                raise self.error("expected a map key (a name, string or number) but found "
                                 f"{key_tok.describe()}", key_tok.pos)
            self.advance()
            self.expect_op(":")
            keys.append(key_tok.value)
            values.append(self.expression())
            if len(keys) > MAX_LIST_LITERAL:
                raise self.error(f"inline map longer than {MAX_LIST_LITERAL} entries",
                                 open_tok.pos)
            if self.is_op(","):
                self.advance()
                continue
            self.expect_op("}")
            return ast.MapLiteral(keys, values, open_tok.pos)


def _check_tree(node: ast.Node, source: str, budget: list[int]) -> None:
    """Depth and size of the tree, iteratively (the evaluator recurses once per level)."""
    stack = [(node, 1)]
    while stack:
        current, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ExpressionSyntaxError(
                f"expression nested too deeply (more than {MAX_DEPTH} levels)",
                current.pos, source)
        budget[0] -= 1
        if isinstance(current, ast.Chain):
            budget[0] -= len(current.steps)
        if budget[0] < 0:
            raise ExpressionSyntaxError(f"expression too large (more than {MAX_NODES} "
                                        "nodes)", current.pos, source)
        stack.extend((child, depth + 1) for child in current.children())


def _check_length(source: str) -> None:
    if not isinstance(source, str):
        raise ExpressionSyntaxError(
            f"an expression must be a string, not {type(source).__name__}", None, None)
    if len(source) > MAX_SOURCE_LENGTH:
        raise ExpressionSyntaxError(f"expression longer than {MAX_SOURCE_LENGTH} characters",
                                    MAX_SOURCE_LENGTH, None)


def parse_expression(source: str) -> ast.Node:
    """Parse a bare expression (no braces around it). Raises ``ExpressionSyntaxError``."""
    _check_length(source)
    tokens, _ = tokenize(source)
    if tokens[0].kind == EOF:
        raise ExpressionSyntaxError("empty expression", 0, source)
    node = _Parser(tokens, source).parse()
    _check_tree(node, source, [MAX_NODES])
    return node


def parse_template(source: str) -> list[TemplatePart]:
    """Parse a template: literal text with ``{expression}`` parts.

    A ``{`` always opens an expression (as in Spring's TemplateParserContext, there is no
    escape: write ``{'{'}`` for a literal brace); a ``}`` outside an expression is text.
    Raises ``ExpressionSyntaxError``.
    """
    _check_length(source)
    parts: list[TemplatePart] = []
    budget = [MAX_NODES]
    i = 0
    n = len(source)
    while i < n:
        brace = source.find("{", i)
        if brace < 0:
            parts.append(source[i:])
            break
        if brace > i:
            parts.append(source[i:brace])
        tokens, end = tokenize(source, brace + 1, template=True)
        if tokens[0].kind == EOF:
            raise ExpressionSyntaxError("empty expression '{}'", brace, source)
        node = _Parser(tokens, source).parse()
        _check_tree(node, source, budget)
        parts.append(node)
        i = end + 1
    return parts
