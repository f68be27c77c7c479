"""The parser's trees (precedence, associativity, flattening) and the Template API."""
from __future__ import annotations

import threading

import pytest

from evgate.el import ExpressionSyntaxError, Template, compile_expression, compile_template
from evgate.el import ast
from evgate.el.lexer import tokenize
from evgate.el.parser import parse_expression, parse_template

PRECEDENCE = [
    ("1 + 2 * 3", "(1 + (2 * 3))"),
    ("1 * 2 + 3", "((1 * 2) + 3)"),
    ("1 - 2 - 3", "((1 - 2) - 3)"),
    ("1 - 2 + 3 - 4", "(((1 - 2) + 3) - 4)"),
    ("2 * (3 + 4)", "(2 * (3 + 4))"),
    ("1 div 2 mod 3", "((1 / 2) % 3)"),
    ("#a || #b && #c", "(#a || (#b && #c))"),
    ("#a && #b || #c", "((#a && #b) || #c)"),
    ("#a or #b or #c", "(#a || #b || #c)"),
    ("!#a == #b", "((!#a) == #b)"),
    ("not #a and not #b", "((!#a) && (!#b))"),
    ("-#a.b", "(-#a.b)"),
    ("-5.toString()", "(-5.toString())"),
    ("(-5).toString()", "(-5).toString()"),
    ("- -5", "5"),
    ("#a ? #b : #c ? #d : #e", "(#a ? #b : (#c ? #d : #e))"),
    ("#a ?: #b ?: #c", "(#a ?: (#b ?: #c))"),
    ("#a or #b ? 1 : 2", "((#a || #b) ? 1 : 2)"),
    ("#a ? 1 : 2 + 3", "(#a ? 1 : (2 + 3))"),
    ("1 + 2 == 3 and #x", "(((1 + 2) == 3) && #x)"),
    ("#a matches 'x' || #b", "((#a matches 'x') || #b)"),
    ("#a eq 1 or #a ne 2", "((#a == 1) || (#a != 2))"),
    ("#a lt 1 and #a ge 0", "((#a < 1) && (#a >= 0))"),
    ("#m['k'].x[0].size()", "#m['k'].x[0].size()"),
    ("{1, 2}.size()", "{1, 2}.size()"),
    ("{a: 1, 'b': {}}", "{'a': 1, 'b': {}}"),
    ("{:}", "{:}"),
    ("#a?.b?.[0]?.size()", "#a?.b?.[0]?.size()"),
    ("#jsonPath(#m.content, '$.a') == 'x'", "(#jsonPath(#m.content, '$.a') == 'x')"),
    ("'it''s' + \"q\"", "('it''s' + 'q')"),
    ("TRUE != Null", "(true != null)"),
    ("1.5e3 + 0x10", "(1500.0 + 16)"),
]


@pytest.mark.parametrize("source, tree", PRECEDENCE)
def test_precedence_and_associativity(source, tree):
    assert str(parse_expression(source)) == tree


def test_runs_of_one_operator_are_flat():
    node = parse_expression("1 + 2 - 3 + 4")
    assert isinstance(node, ast.Arithmetic) and len(node.rest) == 3
    node = parse_expression("#a && #b && #c && #d")
    assert isinstance(node, ast.Logical) and len(node.operands) == 4
    node = parse_expression("#a.b.c['d'][0].size()")
    assert isinstance(node, ast.Chain) and len(node.steps) == 5


def test_template_parts():
    parts = parse_template("kafka://{#m.topic}/{#m.partition}")
    assert [p if isinstance(p, str) else str(p) for p in parts] == \
        ["kafka://", "#m.topic", "/", "#m.partition"]
    assert parse_template("") == []
    assert parse_template("no braces } here") == ["no braces } here"]


def test_tokens_carry_positions():
    tokens, end = tokenize("x{#a == 'b}'} tail", 2, template=True)
    assert [(t.kind, t.value, t.pos) for t in tokens] == [
        ("variable", "a", 2), ("operator", "==", 5), ("string", "b}", 8),
        ("end of expression", None, 12)]
    assert end == 12


def test_template_api():
    template = compile_template("a{#x}b{#y.z}{#jsonPath(#c, '$')}")
    assert isinstance(template, Template)
    assert template.source == "a{#x}b{#y.z}{#jsonPath(#c, '$')}"
    assert template.variables == frozenset({"x", "y", "c"})
    assert not template.is_constant
    assert repr(template) == "Template(" + repr(template.source) + ")"


@pytest.mark.parametrize("source, constant", [
    ("text", True), ("", True), ("{1 + 2}", True), ("a{'b'.toUpperCase()}c", True),
    ("{#x}", False), ("{#jsonPath('{}', '$')}", False), ("{1}{#x}", False),
])
def test_is_constant(source, constant):
    assert compile_template(source).is_constant is constant


def test_constants_are_evaluated_once_and_mutable_results_are_fresh():
    assert compile_template("{1 + 2}").evaluate({"anything": 1}) == 3
    template = compile_template("{{1, 2}}")
    first = template.evaluate({})
    first.append(3)
    assert template.evaluate({}) == [1, 2]
    maps = compile_template("{{a: {1}}}")
    maps.evaluate({})["a"].append(2)
    assert maps.evaluate({}) == {"a": [1]}


def test_compile_expression_versus_compile_template():
    assert compile_expression("{1, 2}").evaluate({}) == [1, 2]   # an inline list
    # In a template the outer braces delimit the expression; a list needs its own braces.
    with pytest.raises(ExpressionSyntaxError, match="unexpected token ','"):
        compile_template("{1, 2}")
    assert compile_template("{{1, 2}}").evaluate({}) == [1, 2]
    assert compile_expression("#a == 1").evaluate({"a": 1}) is True
    assert compile_template("#a == 1").evaluate({"a": 1}) == "#a == 1"   # plain text


def test_templates_are_safe_to_share_between_threads():
    template = compile_template("{#jsonPath(#c, '$.n') * 2}")
    results: list = []

    def work(n: int) -> None:
        for _ in range(200):
            results.append(template.evaluate({"c": f'{{"n": {n}}}'}) == n * 2)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 800 and all(results)
