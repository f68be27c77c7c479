"""Errors: syntax errors with exact positions and messages, evaluation errors, the tree."""
from __future__ import annotations

import copy
import pickle

import pytest

from evgate.el import (
    ExpressionError, ExpressionEvaluationError, ExpressionSyntaxError, compile_expression,
    compile_template, evaluate,
)

from .test_evaluate import make_context

SYNTAX_ERRORS = [
    # (template, position, message)
    ("{#a ==}", 6, "unexpected end of expression"),
    ("{1 + )}", 5, "unexpected token ')'"),
    ("{1 2}", 3, "unexpected token '2'"),
    ("{'x' + }", 7, "unexpected end of expression"),
    ("{#a == 1", 0, "missing '}' to close the expression"),
    ("text {#a} and {#b", 14, "missing '}' to close the expression"),
    ("{}", 0, "empty expression '{}'"),
    ("x{  }", 1, "empty expression '{}'"),
    ("{'abc}", 1, "unterminated string literal"),
    ("{\"abc'}", 1, "unterminated string literal"),
    ("{(1}", 3, "expected ')' but the expression ended"),
    ("{(1 2)}", 4, "expected ')' but found '2'"),
    ("{#list[0}", 8, "expected ']' but the expression ended"),
    ("{{1, 2}", 0, "missing '}' to close the expression"),
    ("{#a ? 1}", 7, "expected ':' but the expression ended"),
    ("{#map.}", 6, "expected a property or method name after '.'"),
    ("{#map.'a'}", 6, "expected a property or method name after '.' but found string 'a'"),
    ("{T(java.lang.Runtime)}", 1, "type references (T(...)) are not allowed"),
    ("{new java.io.File('x')}", 1, "constructors (new) are not allowed"),
    ("{@bean}", 1, "bean references (@name) are not allowed"),
    ("{&factory}", 1, "bean references (&name) are not allowed"),
    ("{#a = 1}", 4, "assignment (=) is not allowed; use == to compare"),
    ("{#a++}", 3, "increment and decrement operators are not allowed"),
    ("{#list.?[#this > 1]}", 6, "collection selection (.?[...]) is not allowed"),
    ("{#list.![#this]}", 6, "collection projection (.![...]) is not allowed"),
    ("{#list.^[#this]}", 6, "collection selection (.^[...]) is not allowed"),
    ("{1 == 2 == 3}", 8, "comparison operators cannot be chained; use parentheses and &&"),
    ("{1 < 2 > 0}", 7, "comparison operators cannot be chained; use parentheses and &&"),
    ("{#x.getClass()}", 4, "unknown method 'getClass'"),
    ("{#this.getClass()}", 7, "unknown method 'getClass'"),
    ("{#s.substring()}", 4, "method 'substring' takes 1 or 2 argument(s), got 0"),
    ("{#s.length(1)}", 4, "method 'length' takes 0 argument(s), got 1"),
    ("{#s.startsWith('a', 1, 2)}", 4, "method 'startsWith' takes 1 or 2 argument(s), got 3"),
    ("{#list.size(1)}", 7, "method 'size' takes 0 argument(s), got 1"),
    ("{#foo(1)}", 1, "unknown function '#foo'"),
    ("{#jsonPath(#a)}", 1, "function '#jsonPath' takes 2 argument(s), got 1"),
    ("{foo}", 1, "unknown name 'foo' (variables are written #foo)"),
    ("{foo(1)}", 1, "unknown function 'foo' (functions are written #foo(...))"),
    ("{__import__('os')}", 1, "names starting with '__' are not allowed"),
    ("{#x.__class__}", 4, "names starting with '__' are not allowed"),
    ("{#__builtins__}", 1, "names starting with '__' are not allowed"),
    ("{[1, 2]}", 1, "list literals are written with braces in Spring EL: {1, 2}"),
    ("{1 instanceof 2}", 3, "the 'instanceof' operator is not supported"),
    ("{1 between {0, 2}}", 3, "the 'between' operator is not supported"),
    ("{2 ^ 3}", 3, "the power operator (^) is not supported"),
    ("{1 | 2}", 3, "unexpected character '|'; use || or 'or'"),
    ("{1 ~ 2}", 3, "unexpected character '~'"),
    ("{#}", 1, "expected a variable or function name after '#'"),
    ("{# a}", 1, "expected a variable or function name after '#'"),
    ("{99999999999999999999}", 1, "integer literal '99999999999999999999' is too large"),
    ("{9223372036854775808}", 1, "integer literal '9223372036854775808' is too large"),
    ("{1e999}", 1, "number literal '1e999' is out of range"),
    ("{1abc}", 1, "invalid number literal '1a'"),
    ("{and}", 1, "unexpected token 'and'"),
    ("{1 and}", 6, "unexpected end of expression"),
    ("{a: 1}", 1, "unknown name 'a' (variables are written #a)"),
    ("{{a: 1, 2}}", 9, "expected ':' but found '}'"),
    ("{{a: 1, #b: 2}}", 8, "expected a map key (a name, string or number) but found '#b'"),
    ("{#jsonPath(#a, '$[')}", 15, "#jsonPath: invalid JSON path"),
    ("{#jsonPath(#a, 5)}", 15, "#jsonPath: a JSON path must be a string, got integer"),
    ("{#s matches '('}", 12, "invalid regular expression"),
    ("{#s matches 'x(?=y)'}", 12, "lookahead (?=...) is not supported: patterns run on RE2, "
                                  "linear-time; see docs/expression-language.md"),
    ("{#s.matches('(?<!a)b')}", 12, "negative lookbehind (?<!...) is not supported"),
    ("{#s.split('(a)\\1')}", 10, "backreference \\1 is not supported"),
    ("ok {#a} {1 +}", 12, "unexpected end of expression"),
]


@pytest.mark.parametrize("source, position, message", SYNTAX_ERRORS)
def test_syntax_errors(source, position, message):
    with pytest.raises(ExpressionSyntaxError) as info:
        compile_template(source)
    error = info.value
    assert error.position == position, error
    assert error.message.startswith(message), error
    assert str(error) == f"{error.message} at position {position}"
    assert error.source == source


@pytest.mark.parametrize("source, position, message", [
    ("#a == 1 }", 8, "unexpected token '}'"),
    ("", 0, "empty expression"),
    ("   ", 0, "empty expression"),
    ("#a ==", 5, "unexpected end of expression"),
    ("{1, 2", 5, "expected '}' but the expression ended"),
    ("#a) ", 2, "unexpected token ')'"),
])
def test_syntax_errors_of_bare_expressions(source, position, message):
    with pytest.raises(ExpressionSyntaxError) as info:
        compile_expression(source)
    assert info.value.position == position
    assert info.value.message.startswith(message)


def test_message_format_names_the_token_and_position():
    with pytest.raises(ExpressionSyntaxError) as info:
        compile_expression("(#a == 'x'))")
    assert str(info.value) == "unexpected token ')' at position 11"


EVALUATION_ERRORS = [
    # (template, position, message)
    ("{#nul.x}", 6, "cannot read property 'x' of null"),
    ("{#map.zz.x}", 9, "cannot read property 'x' of null"),
    ("{#nul[0]}", 5, "cannot index into null"),
    ("{#message.headers['missing'][0]}", 28, "cannot index into null"),
    ("{#list[3]}", 6, "index 3 out of bounds (size 3)"),
    ("{#list[-1]}", 6, "index -1 out of bounds (size 3)"),
    ("{#list['a']}", 6, "a list index must be an integer, got string"),
    ("{#list[true]}", 6, "a list index must be an integer, got boolean"),
    ("{#map[{1}]}", 5, "list cannot be a map key"),
    ("{#n.x}", 4, "cannot read property 'x' of integer"),
    ("{#n[0]}", 3, "cannot index into integer"),
    ("{1 / 0}", 3, "division by zero"),
    ("{1.5 / 0}", 5, "division by zero"),
    ("{1 % 0}", 3, "division by zero"),
    ("{1 < 'a'}", 3, "cannot compare integer and string with '<'"),
    ("{null < 1}", 6, "cannot compare null and integer with '<'"),
    ("{{1} >= {2}}", 5, "cannot compare list and list with '>='"),
    ("{true < 1}", 6, "cannot compare boolean and integer with '<'"),
    ("{1 + true}", 3, "cannot add integer and boolean"),
    ("{null + 1}", 6, "cannot add null and integer"),
    ("{{1} + {2}}", 5, "cannot add list and list"),
    ("{1 - 'a'}", 3, "cannot subtract string from integer"),
    ("{'a' * 1.5}", 5, "cannot multiply string by number"),
    ("{'a' * -1}", 5, "cannot repeat a string a negative number of times"),
    ("{'a' / 2}", 5, "cannot divide string by integer"),
    ("{-'a'}", 1, "cannot negate string"),
    ("{+'a'}", 1, "unary '+' needs a number, got string"),
    ("{!1}", 1, "'!' needs a boolean, got integer"),
    ("{not null}", 1, "'!' needs a boolean, got null"),
    ("{1 && true}", 1, "operands of '&&' must be booleans, got integer"),
    ("{false || 'x'}", 10, "operands of '||' must be booleans, got string"),
    ("{#n ? 1 : 2}", 1, "the condition of '?:' must be a boolean, got integer"),
    ("{9223372036854775807 + 1}", 21, "integer overflow"),
    ("{-9223372036854775807 - 2}", 22, "integer overflow"),
    ("{3037000500 * 3037000500}", 12, "integer overflow"),
    ("{-(-9223372036854775807 - 1)}", 1, "integer overflow"),
    ("{#opaque.value}", 9, "cannot read property 'value' of Opaque"),
    ("{#opaque['value']}", 8, "cannot index into Opaque"),
    ("{#message.nothing}", 10, "View has no property 'nothing'"),
    ("{#message['hidden']}", 9, "View has no property 'hidden'"),
    ("{#message[0]}", 9, "a property name must be a string, got integer"),
    ("{#n.length()}", 4, "method 'length' is not available on integer"),
    ("{#list.startsWith('a')}", 7, "method 'startsWith' is not available on list"),
    ("{#map.contains('a')}", 6, "method 'contains' is not available on map"),
    ("{#opaque.size()}", 9, "method 'size' is not available on Opaque"),
    ("{#nul.size()}", 6, "cannot call method 'size' on null"),
    ("{#s.substring(3, 1)}", 4, "substring(3, 1) out of bounds (length 5)"),
    ("{#s.substring(9)}", 4, "substring(9, 5) out of bounds (length 5)"),
    ("{#s.substring('a')}", 4, "substring() needs an integer argument, got string"),
    ("{#s.charAt(5)}", 4, "index 5 out of bounds (size 5)"),
    ("{#s.startsWith(1)}", 4, "startsWith() needs a string argument, got integer"),
    ("{#list.get(3)}", 7, "index 3 out of bounds (size 3)"),
    ("{#list.indexOf(1, 2)}", 7, "method 'indexOf' of list takes 1 argument(s), got 2"),
    ("{#jsonPath('not json', '$.a')}", 1, "#jsonPath: the content is not valid JSON"),
    ("{#jsonPath(#bytes, '$.a')}", 1, "#jsonPath: the content is not valid JSON"),
    ("{#jsonPath(#nul, '$.a')}", 1, "#jsonPath: the content is null"),
    ("{#jsonPath(5, '$.a')}", 1, "#jsonPath: cannot read JSON from integer"),
    ("{#jsonPath(#message.content, #n)}", 1,
     "#jsonPath: a JSON path must be a string, got integer"),
    ("{#jsonPath(#message.content, '$[' + '')}", 1, "#jsonPath: invalid JSON path"),
    ("{#n matches 'x'}", 4, "'matches' needs a string to match, got integer"),
    ("{#s matches #n}", 4, "a regular expression must be a string, got integer"),
    ("{#s matches '(' + ''}", 4, "invalid regular expression"),
    ("{#s.split(#n)}", 4, "a regular expression must be a string, got integer"),
]


@pytest.mark.parametrize("source, position, message", EVALUATION_ERRORS)
def test_evaluation_errors(source, position, message):
    template = compile_template(source)
    with pytest.raises(ExpressionEvaluationError) as info:
        template.evaluate(make_context())
    error = info.value
    assert error.message.startswith(message), error
    assert error.position == position, error
    assert error.source == source


def test_error_tree():
    assert issubclass(ExpressionSyntaxError, ExpressionError)
    assert issubclass(ExpressionEvaluationError, ExpressionError)
    assert issubclass(ExpressionError, Exception)
    assert not issubclass(ExpressionSyntaxError, ExpressionEvaluationError)


def test_errors_pickle_and_copy():
    error = ExpressionSyntaxError("unexpected token ')'", 12, "(1))")
    for clone in (pickle.loads(pickle.dumps(error)), copy.copy(error)):
        assert type(clone) is ExpressionSyntaxError
        assert (clone.message, clone.position, clone.source) == ("unexpected token ')'", 12,
                                                                  "(1))")
        assert str(clone) == "unexpected token ')' at position 12"
    assert str(ExpressionEvaluationError("boom")) == "boom"


def test_evaluation_error_from_the_evaluate_helper_has_the_source():
    with pytest.raises(ExpressionEvaluationError) as info:
        evaluate("x{1/0}", {})
    assert info.value.source == "x{1/0}" and info.value.position == 3


def test_a_constant_that_fails_fails_at_every_evaluation():
    template = compile_template("{1 / 0}")
    assert template.is_constant
    for _ in range(2):
        with pytest.raises(ExpressionEvaluationError):
            template.evaluate({})


class _Exploding:
    def el_properties(self):
        raise RuntimeError("database is down")


class _BadProperties:
    def el_properties(self):
        return ["not", "a", "mapping"]


class _ExplodingMapping(dict):
    def get(self, key, default=None):
        raise KeyError("weird")


def test_failures_of_caller_objects_become_evaluation_errors():
    with pytest.raises(ExpressionEvaluationError) as info:
        compile_template("{#x.a}").evaluate({"x": _Exploding()})
    assert "RuntimeError: database is down" in info.value.message
    assert isinstance(info.value.__cause__, RuntimeError)

    with pytest.raises(ExpressionEvaluationError) as info:
        compile_template("{#x.a}").evaluate({"x": _BadProperties()})
    assert info.value.message == "_BadProperties.el_properties() did not return a mapping"

    with pytest.raises(ExpressionEvaluationError):
        compile_template("{#a}").evaluate(_ExplodingMapping())

    with pytest.raises(ExpressionEvaluationError):
        compile_template("{#a}").evaluate(42)  # not a mapping at all


def test_non_string_sources_are_syntax_errors():
    for source in (None, 42, b"{#a}", ["{#a}"]):
        with pytest.raises(ExpressionSyntaxError):
            compile_template(source)
        with pytest.raises(ExpressionSyntaxError):
            compile_expression(source)
        with pytest.raises(ExpressionSyntaxError):
            evaluate(source, {})
