"""Values of expressions: a table per area of the language, evaluated against one context.

The helpers at the top (View, Opaque, Headers, make_context) are shared by the other
modules of this package.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from evgate.el import (
    ExpressionError, compile_expression, compile_template, evaluate,
)


class View:
    """An object that exposes a whitelist through ``el_properties()``, like the gateway's
    Message and request views."""

    def __init__(self, **props: Any) -> None:
        self._props = props
        self.hidden = "not readable"

    def el_properties(self) -> Mapping[str, Any]:
        return self._props


class Opaque:
    """An object without the protocol: nothing of it is readable."""

    secret = "class secret"

    def __init__(self) -> None:
        self.value = 1


class Headers(Mapping):
    """Case-insensitive multi-valued headers (a Mapping, not a dict)."""

    def __init__(self, data: dict[str, list[str]]) -> None:
        self._data = {k.lower(): v for k, v in data.items()}

    def __getitem__(self, key: str) -> list[str]:
        return self._data[key.lower()]

    def __iter__(self):
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


CONTENT = json.dumps({
    "feature": "a", "n": 3, "price": 9.5, "flag": True, "none": None,
    "items": [{"id": 1, "name": "one"}, {"id": 2, "name": "two"}],
    "nested": {"k": "v"},
}).encode()


def make_context() -> dict[str, Any]:
    return {
        "message": View(
            id="m1", content=CONTENT,
            headers={"x-header-test": ["v1", "v2"]},
            metadata={"topic": "orders", "partition": 2, "offset": 42, "key": "k1"},
            attributes={}, error=None),
        "request": View(headers=Headers({"X-Condition": ["root-condition"]}), path="/p",
                        method="POST", content='{"a": 1}'),
        "subscription": {"id": "s1", "type": "PUSH", "metadata": {"feature": "a"}},
        "n": 5, "f": 2.5, "s": "hello", "t": True, "list": [1, 2, 3],
        "map": {"a": 1, "b": None}, "nul": None, "bytes": "café".encode(),
        "opaque": Opaque(), "empty": "", "pattern": "h.*o", "tuple": (1, 2),
    }


@pytest.fixture
def ctx() -> dict[str, Any]:
    return make_context()


def check(source: str, expected: Any, ctx: dict) -> None:
    value = compile_template(source).evaluate(ctx)
    assert value == expected
    # == alone would let True pass for 1 and 1.0 for 1: the type is part of the contract.
    assert type(value) is type(expected), (value, expected)


GRAVITEE = [
    ("{#jsonPath(#message.content, '$.feature') == #subscription.metadata.feature}", True),
    ("{#message.headers['x-header-test'][0]}", "v1"),
    ("{#request.headers['X-Condition'][0] == 'root-condition'}", True),
    ("kafka://{#message.metadata['topic']}/{#message.metadata['partition']}",
     "kafka://orders/2"),
    ("kafka://{#message.metadata['topic']}/{#message.metadata['partition']}/"
     "{#message.metadata['offset']}", "kafka://orders/2/42"),
    ("{#message.metadata['key']}", "k1"),
]

LITERALS = [
    ("{42}", 42), ("{-7}", -7), ("{3.5}", 3.5), ("{1e3}", 1000.0), ("{1.5E-1}", 0.15),
    ("{0x1F}", 31), ("{10L}", 10), ("{2.5f}", 2.5), ("{2d}", 2.0),
    ("{9223372036854775807}", 9223372036854775807),
    ("{'it''s'}", "it's"), ('{"say ""hi"""}', 'say "hi"'), ("{'a\\nb'}", "a\\nb"),
    ("{'{}'}", "{}"), ("{''}", ""),
    ("{true}", True), ("{FALSE}", False), ("{null}", None), ("{Null}", None),
    ("{{1, 2, 3}}", [1, 2, 3]), ("{{}}", []), ("{{:}}", {}),
    ("{{a: 1, 'b c': #n, 3: 'x'}}", {"a": 1, "b c": 5, 3: "x"}),
    ("{{1: 'x'}[1]}", "x"), ("{{{1}, {2, 3}}[1][0]}", 2), ("{{#n, #s}}", [5, "hello"]),
    ("{{a: {b: 1}}.a.b}", 1),
]

ARITHMETIC = [
    ("{1 + 2 * 3}", 7), ("{(1 + 2) * 3}", 9), ("{10 - 4 - 3}", 3), ("{2 * 3 % 4}", 2),
    ("{100 / 10 / 5}", 2), ("{7 / 2}", 3), ("{-7 / 2}", -3), ("{7 / -2}", -3),
    ("{7.0 / 2}", 3.5), ("{7 % 3}", 1), ("{-7 % 3}", -1), ("{7 % -3}", 1), ("{5.5 % 2}", 1.5),
    ("{7 div 2}", 3), ("{7 MOD 2}", 1), ("{1 + 2.5}", 3.5), ("{-#n}", -5), ("{+#n}", 5),
    ("{- -3}", 3), ("{#n * #f}", 12.5), ("{2 - 3 * 4 + 1}", -9), ("{-(2 + 3)}", -5),
    ("{-9223372036854775807 - 1}", -9223372036854775808),
    ("{'a' + 'b'}", "ab"), ("{'a' + 1}", "a1"), ("{1 + 'a'}", "1a"), ("{1 + 2 + 'a'}", "3a"),
    ("{'a' + 1 + 2}", "a12"), ("{'a' + (1 + 2)}", "a3"), ("{'a' + null}", "anull"),
    ("{null + 'a'}", "nulla"), ("{'a' + true}", "atrue"), ("{'v' + 1.5}", "v1.5"),
    ("{'l' + {1, 'x', null}}", "l[1, x, null]"), ("{'m' + {a: 1}}", "m{a=1}"),
    ("{'ab' * 3}", "ababab"), ("{'ab' * 0}", ""), ("{#bytes + '!'}", "café!"),
]

COMPARISONS = [
    ("{1 == 1}", True), ("{1 == 1.0}", True), ("{1 != 2}", True), ("{'a' == 'a'}", True),
    ("{'a' == 1}", False), ("{1 == true}", False), ("{0 == false}", False),
    ("{null == null}", True), ("{#nul == null}", True), ("{#missing == null}", True),
    ("{'' == null}", False), ("{{1, 2} == {1, 2}}", True), ("{{1, 2} == {1, 2.0}}", True),
    ("{{1, 2} == {2, 1}}", False), ("{{1} == {true}}", False), ("{{a: 1} == {a: 1}}", True),
    ("{{a: 1} == {a: 2}}", False), ("{{a: 1} == {b: 1}}", False), ("{#list == {1, 2, 3}}", True),
    ("{#tuple == {1, 2}}", True), ("{#bytes == 'café'}", True), ("{'café' == #bytes}", True),
    ("{#bytes != 'cafe'}", True), ("{#map == #map}", True),
    ("{1 < 2}", True), ("{2 <= 2}", True), ("{3 > 2.5}", True), ("{2 >= 3}", False),
    ("{'a' < 'b'}", True), ("{'b' >= 'a'}", True), ("{'B' < 'a'}", True),
    ("{#bytes > 'caf'}", True), ("{false < true}", True),
    ("{1 lt 2}", True), ("{1 LE 1}", True), ("{2 gt 1}", True), ("{2 ge 3}", False),
    ("{1 eq 1}", True), ("{1 ne 1}", False), ("{'x' EQ 'x'}", True),
    ("{'abc' matches 'a.*'}", True), ("{'abc' matches 'b'}", False),
    ("{'ABC' matches '(?i)abc'}", True), ("{#s matches #pattern}", True),
    ("{#bytes matches 'caf.'}", True), ("{'a1,b2' matches '([a-z]\\d,?)+'}", True),
    ("{1 + 1 == 2}", True), ("{'a' + 'b' == 'ab'}", True),
]

LOGIC = [
    ("{true && false}", False), ("{true || false}", True), ("{!true}", False),
    ("{!!true}", True), ("{not false}", True), ("{true and not false}", True),
    ("{false or true and false}", False), ("{true or false and false}", True),
    ("{!(1 == 2)}", True), ("{false && #nul.x}", False), ("{true || #nul.x}", True),
    ("{true AND true OR false}", True), ("{1 < 2 && 2 < 3 && 3 < 4}", True),
    ("{1 < 2 && 2 > 3 || 4 == 4}", True),
    ("{#t ? 'y' : 'n'}", "y"), ("{false ? 1 : true ? 2 : 3}", 2), ("{#nul ?: 'd'}", "d"),
    ("{#empty ?: 'd'}", "d"), ("{#s ?: 'd'}", "hello"), ("{0 ?: 'd'}", 0),
    ("{false ?: 'd'}", False), ("{1 > 2 ? 'a' : 'b' + 'c'}", "bc"),
    ("{#nul ?: #missing ?: 'last'}", "last"), ("{(#t ? 1 : 2) + 1}", 2),
]

ACCESS = [
    ("{#map.a}", 1), ("{#map['a']}", 1), ("{#map.zz}", None), ("{#map['zz']}", None),
    ("{#map.b}", None), ("{#list[0]}", 1), ("{#list[2]}", 3), ("{#tuple[1]}", 2),
    ("{#s[1]}", "e"), ("{#bytes[3]}", "é"),
    ("{#message.metadata['topic']}", "orders"), ("{#message.metadata.topic}", "orders"),
    ("{#message['metadata']['topic']}", "orders"),
    ("{#message.headers['x-header-test'][1]}", "v2"), ("{#message.id}", "m1"),
    ("{#message.error}", None), ("{#request.headers['x-condition'][0]}", "root-condition"),
    ("{#request.headers['X-Missing']}", None), ("{#request.headers.size()}", 1),
    ("{#nul?.x}", None), ("{#nul?.x.y.z}", None), ("{#nul?.[0]}", None),
    ("{#nul?.size()}", None), ("{#map?.a}", 1), ("{#list?.[1]}", 2),
    ("{#map?.zz?.x}", None), ("{#subscription.metadata.feature}", "a"),
    ("{#map[#s.substring(0, 0) + 'a']}", 1), ("{#list[#list[0]]}", 2),
]

METHODS = [
    ("{#s.startsWith('he')}", True), ("{#s.startsWith('l', 2)}", True),
    ("{#s.startsWith('h', 9)}", False), ("{#s.endsWith('lo')}", True),
    ("{#s.contains('ell')}", True), ("{#s.contains('x')}", False),
    ("{#s.matches('h.*')}", True), ("{#s.matches('e.*')}", False),
    ("{'MiXed'.toLowerCase()}", "mixed"), ("{'MiXed'.toUpperCase()}", "MIXED"),
    ("{'  x \t'.trim()}", "x"), ("{#s.length()}", 5), ("{#bytes.length()}", 4),
    ("{''.isEmpty()}", True), ("{#s.isEmpty()}", False), ("{'  '.isBlank()}", True),
    ("{#s.substring(1)}", "ello"), ("{#s.substring(1, 3)}", "el"), ("{#s.substring(5)}", ""),
    ("{#s.indexOf('l')}", 2), ("{#s.indexOf('l', 3)}", 3), ("{#s.indexOf('z')}", -1),
    ("{#s.lastIndexOf('l')}", 3), ("{#s.charAt(0)}", "h"),
    ("{#s.replace('l', 'L')}", "heLLo"), ("{'a.b.c'.replace('.', '')}", "abc"),
    ("{'a,b,,c,,'.split(',')}", ["a", "b", "", "c"]), ("{'a1b22c'.split('\\d+')}", ["a", "b", "c"]),
    ("{'abc'.split('')}", ["a", "b", "c"]), ("{''.split(',')}", [""]), ("{','.split(',')}", []),
    ("{',a'.split(',')}", ["", "a"]), ("{'a.b'.split('.')}", []), ("{'a.b'.split('\\.')}", ["a", "b"]),
    ("{#s.equals('hello')}", True), ("{#s.equals(1)}", False),
    ("{#s.equalsIgnoreCase('HeLLo')}", True), ("{#s.equalsIgnoreCase(null)}", False),
    ("{#s.concat('!')}", "hello!"), ("{#s.toString()}", "hello"),
    ("{#s.toUpperCase().substring(0, 2).concat('!')}", "HE!"),
    ("{#list.size()}", 3), ("{{}.isEmpty()}", True), ("{#list.contains(2)}", True),
    ("{#list.contains(2.0)}", True), ("{#list.contains('2')}", False), ("{#list.get(1)}", 2),
    ("{#list.indexOf(3)}", 2), ("{#list.indexOf(9)}", -1), ("{#tuple.size()}", 2),
    ("{#map.size()}", 2), ("{#map.isEmpty()}", False), ("{#map.containsKey('a')}", True),
    ("{#map.containsKey('zz')}", False), ("{#map.containsValue(1)}", True),
    ("{#map.get('a')}", 1), ("{#map.get('zz')}", None),
    ("{#n.toString()}", "5"), ("{#t.toString()}", "true"), ("{#f.toString()}", "2.5"),
    ("{#list.toString()}", "[1, 2, 3]"), ("{#n.equals(5)}", True), ("{#n.equals('5')}", False),
    ("{#message.headers['x-header-test'].contains('v2')}", True),
]

JSON_PATH = [
    ("{#jsonPath(#message.content, '$.feature')}", "a"),
    ("{#jsonPath(#message.content, '$.n')}", 3),
    ("{#jsonPath(#message.content, '$.price')}", 9.5),
    ("{#jsonPath(#message.content, '$.flag')}", True),
    ("{#jsonPath(#message.content, '$.none')}", None),
    ("{#jsonPath(#message.content, '$.missing')}", None),
    ("{#jsonPath(#message.content, '$.missing.deeper')}", None),
    ("{#jsonPath(#message.content, '$.items[1].id')}", 2),
    ("{#jsonPath(#message.content, '$.items[-1].name')}", "two"),
    ("{#jsonPath(#message.content, '$.items[5]')}", None),
    ("{#jsonPath(#message.content, '$.nested.k')}", "v"),
    ("{#jsonPath(#message.content, \"$['nested']['k']\")}", "v"),
    ("{#jsonPath(#message.content, '$.items[*].id')}", [1, 2]),
    ("{#jsonPath(#message.content, '$.items[?(@.id > 1)].name')}", ["two"]),
    ("{#jsonPath(#message.content, '$..k')}", ["v"]),
    ("{#jsonPath(#message.content, '$..zz')}", []),
    ("{#jsonPath(#message.content, '$.items[0:1].id')}", [1]),
    ("{#jsonPath(#message.content, '$.items[*].id').contains(2)}", True),
    ("{#jsonPath(#message.content, '$.items').size()}", 2),
    ("{#jsonPath(#message.content, '$.' + 'feature')}", "a"),
    ("{#jsonPath(#request.content, '$.a')}", 1),
    ("{#jsonPath(#map, '$.a')}", 1),
    ("{#jsonPath(#list, '$[0]')}", 1),
    ("{#jsonPath('[10, 20]', '$[1]')}", 20),
    ("{#jsonPath(#message.content, '$.n') * 2}", 6),
    ("{#jsonPath(#message.content, '$.price') < 10}", True),
]

TEMPLATES = [
    ("id-{#nul}-x", "id--x"), ("{#n}", 5), (" {#n}", " 5"), ("{#n}{#n}", "55"),
    ("v={#t}", "v=true"), ("{#list}", [1, 2, 3]), ("l={#list}", "l=[1, 2, 3]"),
    ("f={#f}", "f=2.5"), ("plain text", "plain text"), ("", ""), ("a } b", "a } b"),
    ("}}", "}}"), ("{'a}' == 'a}'}", True), ("{'{'}x{'}'}", "{x}"), ("{ {1, 2}.size() }", 2),
    ("{\"}\"}", "}"), ("x{'it''s'}y", "xit'sy"), ("{#bytes}", "café".encode()),
    ("b={#bytes}", "b=café"), ("{#map}", {"a": 1, "b": None}),
    ("{#s}, {#s.toUpperCase()}!", "hello, HELLO!"), ("\n{#n}\n", "\n5\n"),
]


@pytest.mark.parametrize("source, expected", GRAVITEE)
def test_gravitee_examples(source, expected, ctx):
    check(source, expected, ctx)


@pytest.mark.parametrize("source, expected", LITERALS)
def test_literals(source, expected, ctx):
    check(source, expected, ctx)


@pytest.mark.parametrize("source, expected", ARITHMETIC)
def test_arithmetic(source, expected, ctx):
    check(source, expected, ctx)


@pytest.mark.parametrize("source, expected", COMPARISONS)
def test_comparisons(source, expected, ctx):
    check(source, expected, ctx)


@pytest.mark.parametrize("source, expected", LOGIC)
def test_logic_ternary_elvis(source, expected, ctx):
    check(source, expected, ctx)


@pytest.mark.parametrize("source, expected", ACCESS)
def test_property_and_index_access(source, expected, ctx):
    check(source, expected, ctx)


@pytest.mark.parametrize("source, expected", METHODS)
def test_methods(source, expected, ctx):
    check(source, expected, ctx)


@pytest.mark.parametrize("source, expected", JSON_PATH)
def test_json_path(source, expected, ctx):
    check(source, expected, ctx)


@pytest.mark.parametrize("source, expected", TEMPLATES)
def test_templates(source, expected, ctx):
    check(source, expected, ctx)


@pytest.mark.parametrize("source, expected", [
    ("#n == 5", True), ("#message.metadata['topic']", "orders"), ("{1, 2}", [1, 2]),
    ("{a: 1}.a", 1), ("'x' + #n", "x5"), ("  #s  ", "hello"),
])
def test_bare_expressions(source, expected, ctx):
    value = compile_expression(source).evaluate(ctx)
    assert value == expected and type(value) is type(expected)


def test_gravitee_examples_with_the_gateway_message():
    from evgate.core.message import Message

    message = Message(content=b'{"feature": "beta"}', headers={"x-header-test": ["h"]},
                      metadata={"topic": "t1", "partition": 0, "offset": 7, "key": "k"})
    ctx = {"message": message, "subscription": {"metadata": {"feature": "beta"}}}
    assert compile_template(GRAVITEE[0][0]).evaluate(ctx) is True
    assert compile_template(GRAVITEE[1][0]).evaluate(ctx) == "h"
    assert compile_template(GRAVITEE[4][0]).evaluate(ctx) == "kafka://t1/0/7"
    ctx["subscription"]["metadata"]["feature"] = "alpha"
    assert compile_template(GRAVITEE[0][0]).evaluate(ctx) is False


def test_a_message_without_the_feature_matches_no_subscription_feature(ctx):
    # $.missing is null, and null == 'a' is false: such a message is filtered out.
    ctx["message"] = View(content=b'{"other": 1}')
    assert compile_template(GRAVITEE[0][0]).evaluate(ctx) is False


def test_content_may_be_str_or_bytes(ctx):
    template = compile_template("{#jsonPath(#c, '$.a.b')}")
    assert template.evaluate({"c": '{"a": {"b": [1]}}'}) == [1]
    assert template.evaluate({"c": b'{"a": {"b": [1]}}'}) == [1]
    assert template.evaluate({"c": bytearray(b'{"a": {"b": 2}}')}) == 2
    assert template.evaluate({"c": memoryview(b'{"a": {"b": 3}}')}) == 3
    assert template.evaluate({"c": {"a": {"b": 4}}}) == 4


def test_evaluate_helper_and_its_cache(ctx):
    from evgate.el.evaluate import _cached

    source = "{#n + 1} at {#s}"
    assert evaluate(source, ctx) == "6 at hello"
    hits = _cached.cache_info().hits
    assert evaluate(source, {"n": 1, "s": "x"}) == "2 at x"
    assert _cached.cache_info().hits == hits + 1


def test_the_context_may_be_omitted():
    assert compile_template("{#anything == null}").evaluate() is True
    assert evaluate("{1 + 1}") == 2


def test_errors_from_the_evaluate_helper_are_fresh_each_time():
    errors = []
    for _ in range(3):
        with pytest.raises(ExpressionError) as info:
            evaluate("{1 +}")
        errors.append(info.value)
    assert errors[0] is not errors[1]
    assert all(e.position == 4 and e.message == "unexpected end of expression" for e in errors)


def test_reading_a_defaultdict_does_not_write_to_it():
    from collections import defaultdict

    data: defaultdict = defaultdict(list)
    ctx = {"d": data, "o": View(d=data)}
    assert compile_template("{#d.missing}").evaluate(ctx) is None
    assert compile_template("{#d['missing']}").evaluate(ctx) is None
    assert compile_template("{#o.d.get('missing')}").evaluate(ctx) is None
    assert compile_template("{#d == {a: 1}}").evaluate(ctx) is False
    assert dict(data) == {}


def test_huge_integers_from_data_mixed_with_floats():
    with pytest.raises(ExpressionError, match="number too large"):
        compile_template("{#n + 0.5}").evaluate({"n": 10 ** 400})
    assert compile_template("{#n > 0.5}").evaluate({"n": 10 ** 400}) is True
