"""Property-based tests: whatever the input, only ExpressionError escapes; and the
language agrees with reference semantics on generated values."""
from __future__ import annotations

import math

from hypothesis import HealthCheck, assume, given, settings, strategies as st

from evgate.el import ExpressionError, compile_expression, compile_template
from evgate.el.lexer import MAX_INT, MIN_INT
from evgate.el.parser import parse_expression

from .test_evaluate import make_context

SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
CTX = make_context()


def survives(source: str, *, template: bool) -> None:
    """Compile and evaluate; the only acceptable failure is an ExpressionError."""
    try:
        compiled = compile_template(source) if template else compile_expression(source)
    except ExpressionError as error:
        assert error.position is None or 0 <= error.position <= len(source)
        return
    try:
        compiled.evaluate(CTX)
    except ExpressionError:
        pass


ALPHABET = st.sampled_from(list("{}#'\"()[].?:!<>=&|+-*/%^@$_ ,;~\\\n\t") +
                           list("abcTxyz019eE") + ["é", "\u2028", "\x00", "😀"])


@SETTINGS
@given(st.text(ALPHABET, max_size=80))
def test_random_text_only_raises_expression_errors(text):
    survives(text, template=True)
    survives(text, template=False)


@SETTINGS
@given(st.text(max_size=40))
def test_random_unicode_only_raises_expression_errors(text):
    survives(text, template=True)
    survives(text, template=False)


TOKENS = [
    "#message", "#subscription", "#request", "#n", "#s", "#f", "#list", "#map", "#nul",
    "#bytes", "#opaque", "#tuple", "#jsonPath", "#this", "(", ")", "[", "]", "{", "}", ",",
    ":", ".", "?.", "?", "?:", "==", "!=", "<", ">", "<=", ">=", "&&", "||", "!", "+", "-",
    "*", "/", "%", "and", "or", "not", "eq", "lt", "div", "mod", "matches", "true", "false",
    "null", "'a'", "''", "'$.feature'", "'$.items[*].id'", "'.*'", "'(a+)+'", "'x''y'",
    '"q"', "0", "1", "2", "-1", "1.5", "1e308", "9223372036854775807", "0x10", "size",
    "length", "toUpperCase", "substring", "contains", "split", "matches", "get", "metadata",
    "content", "headers", "feature", "a", "T", "new", "@x", "=", "__class__", "x",
]


@SETTINGS
@given(st.lists(st.sampled_from(TOKENS), max_size=25), st.sampled_from(["", " "]))
def test_token_soup_only_raises_expression_errors(tokens, separator):
    body = separator.join(tokens)
    survives(body, template=False)
    survives("{" + body + "}", template=True)
    survives("pre-{" + body + "}-post", template=True)


# -- generated valid expressions -------------------------------------------------------------

def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


atoms = st.one_of(
    st.integers(-1000, 1000).map(str),
    st.floats(0, 1e6, allow_nan=False).map(repr),
    st.text("ab'{}", max_size=4).map(_quote),
    st.sampled_from(["true", "false", "null", "#n", "#f", "#s", "#list", "#map", "#nul",
                     "#bytes", "#t", "#empty", "#message", "#subscription.metadata",
                     "#message.content", "{}", "{:}"]),
)
BINARY = ["+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "&&", "||", "matches"]
METHODS = [".size()", ".length()", ".toUpperCase()", ".trim()", ".isEmpty()",
           ".substring(1)", ".contains('a')", ".get(0)", ".toString()", ".split(',')"]


JSON_PATHS = ["'$.feature'", "'$.items[*]'", "'$'"]
PROPERTIES = [".a", "?.a", ".topic", "?.feature"]


@st.composite
def expressions(draw, depth: int = 0) -> str:
    """A syntactically valid expression (a composite keeps hypothesis' reprs small)."""
    if depth >= 4 or draw(st.integers(0, 2)) == 0:
        return draw(atoms)
    sub = expressions(depth + 1)
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return f"({draw(sub)} {draw(st.sampled_from(BINARY))} {draw(sub)})"
    if kind == 1:
        return f"({draw(st.sampled_from(['!', '- ', 'not ']))}{draw(sub)})"
    if kind == 2:
        return f"({draw(sub)} ? {draw(sub)} : {draw(sub)})"
    if kind == 3:
        return f"({draw(sub)} ?: {draw(sub)})"
    if kind == 4:
        return f"({draw(sub)}){draw(st.sampled_from(METHODS))}"
    if kind == 5:
        return f"({draw(sub)}){draw(st.sampled_from(PROPERTIES))}"
    if kind == 6:
        return f"({draw(sub)})[{draw(sub)}]"
    if kind == 7:
        return "{" + ", ".join(draw(st.lists(sub, max_size=3))) + "}"
    if kind == 8:
        return f"#jsonPath({draw(sub)}, {draw(st.sampled_from(JSON_PATHS))})"
    return f"({draw(sub)} {draw(st.sampled_from(BINARY))} {draw(sub)})"


@SETTINGS
@given(expressions())
def test_generated_expressions_parse_print_and_reparse(source):
    tree = parse_expression(source)     # valid by construction: must not raise
    printed = str(tree)
    assert str(parse_expression(printed)) == printed
    survives(source, template=False)
    survives("{" + source + "}", template=True)


@SETTINGS
@given(expressions())
def test_printing_preserves_values(source):
    printed = str(parse_expression(source))

    def outcome(text):
        try:
            value = compile_expression(text).evaluate(CTX)
        except ExpressionError as error:
            return ("error", error.message)
        if isinstance(value, float) and math.isnan(value):
            return ("nan",)
        if type(value) in (int, float, str, bool, bytes, list, dict, type(None)):
            return ("value", type(value), repr(value))
        return ("object", type(value))

    original = outcome(source)
    again = outcome(printed)
    assert original[0] == again[0]
    if original[0] != "error":
        assert original == again


# -- reference semantics ---------------------------------------------------------------------

@SETTINGS
@given(st.text(max_size=60))
def test_string_literals_round_trip(text):
    assert compile_expression(_quote(text)).evaluate({}) == text
    assert compile_expression('"' + text.replace('"', '""') + '"').evaluate({}) == text
    assert compile_template("{" + _quote(text) + "}").evaluate({}) == text


@SETTINGS
@given(st.text(max_size=60).filter(lambda t: "{" not in t))
def test_text_without_braces_is_itself(text):
    template = compile_template(text)
    assert template.is_constant and template.evaluate({}) == text


def _java(op: str, a: int, b: int):
    if op in "/%" and b == 0:
        return "division by zero"
    if op == "+":
        result = a + b
    elif op == "-":
        result = a - b
    elif op == "*":
        result = a * b
    elif op == "/":
        result = int(abs(a) // abs(b)) * (1 if (a < 0) == (b < 0) else -1)
    else:
        result = int(math.copysign(abs(a) % abs(b), a)) if a % b else 0
    return result if MIN_INT <= result <= MAX_INT else "integer overflow"


int64 = st.integers(MIN_INT, MAX_INT) | st.integers(-20, 20)


@SETTINGS
@given(int64, st.sampled_from(["+", "-", "*", "/", "%"]), int64)
def test_integer_arithmetic_follows_java_with_overflow_errors(a, op, b):
    expected = _java(op, a, b)
    try:
        value = compile_expression(f"#a {op} #b").evaluate({"a": a, "b": b})
    except ExpressionError as error:
        assert error.message == expected
    else:
        assert value == expected and type(value) is int


@SETTINGS
@given(st.one_of(st.integers(-5, 5), st.floats(-5, 5, allow_nan=False)),
       st.one_of(st.integers(-5, 5), st.floats(-5, 5, allow_nan=False)))
def test_numeric_comparisons_agree_with_python(a, b):
    for op, expected in (("<", a < b), ("<=", a <= b), (">", a > b), (">=", a >= b),
                         ("==", a == b), ("!=", a != b)):
        assert compile_expression(f"#a {op} #b").evaluate({"a": a, "b": b}) is expected


@SETTINGS
@given(st.text("ab\u00e9", max_size=4), st.text("ab\u00e9", max_size=4))
def test_string_comparisons_agree_with_python(a, b):
    ctx = {"a": a, "b": b, "ab": a.encode()}
    assert compile_expression("#a < #b").evaluate(ctx) is (a < b)
    assert compile_expression("#ab >= #b").evaluate(ctx) is (a >= b)
    assert compile_expression("#ab == #a").evaluate(ctx) is True


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(-2, 2, allow_nan=False)
    | st.text("ab", max_size=2),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text("ab", max_size=2), children, max_size=3),
    max_leaves=10)


@SETTINGS
@given(json_values, json_values)
def test_equality_is_reflexive_symmetric_and_boolean(a, b):
    template = compile_expression("#a == #b")
    forward = template.evaluate({"a": a, "b": b})
    assert forward is template.evaluate({"a": b, "b": a})
    assert template.evaluate({"a": a, "b": a}) is True
    assert compile_expression("#a != #b").evaluate({"a": a, "b": b}) is (not forward)


@SETTINGS
@given(json_values)
def test_json_path_root_returns_the_document(document):
    import json
    assume(not isinstance(document, float) or math.isfinite(document))
    content = json.dumps(document)
    if isinstance(document, (dict, list)):
        value = compile_template("{#jsonPath(#c, '$')}").evaluate({"c": content})
        assert compile_expression("#v == #d").evaluate({"v": value, "d": document}) is True
