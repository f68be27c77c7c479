"""Functions (#jsonPath), the function registry, regex safety and the object protocol."""
from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings, strategies as st

from evgate.el import ExpressionError, FUNCTIONS, compile_template
from evgate.el import jsonpath as fn
from evgate.el.functions import Function, InvalidArgument, compile_json_path, compile_regex

from .test_evaluate import View


# -- #jsonPath -----------------------------------------------------------------------------

def test_literal_paths_are_compiled_once_at_compile_time():
    template = compile_template("{#jsonPath(#c, '$.deep.path.' + 'x') == #jsonPath(#c, '$.a')}")
    compile_json_path.cache_clear()
    for _ in range(3):
        template.evaluate({"c": '{"a": 1, "deep": {"path": {"x": 1}}}'})
    info = compile_json_path.cache_info()
    # Only the computed path is looked up at run time (once parsed, then cached).
    assert info.misses == 1 and info.hits == 2


def test_json_content_is_parsed_once_per_evaluation(monkeypatch):
    calls = []
    real = json.loads
    monkeypatch.setattr(fn.json, "loads", lambda text: calls.append(1) or real(text))
    template = compile_template("{#jsonPath(#c, '$.a') == 1 && #jsonPath(#c, '$.b') == 2}")
    ctx = {"c": b'{"a": 1, "b": 2}'}
    assert template.evaluate(ctx) is True
    assert len(calls) == 1
    assert template.evaluate(ctx) is True
    assert len(calls) == 2          # a new evaluation parses again by default...
    shared: dict = {}
    template.evaluate(ctx, cache=shared)
    template.evaluate(ctx, cache=shared)
    compile_template("{#jsonPath(#c, '$.b')}").evaluate(ctx, cache=shared)
    assert len(calls) == 3          # ...and once for all evaluations sharing a cache


def test_shared_cache_is_keyed_by_object_identity():
    shared: dict = {}
    template = compile_template("{#jsonPath(#c, '$.a')}")
    assert template.evaluate({"c": b'{"a": 1}'}, cache=shared) == 1
    assert template.evaluate({"c": b'{"a": 2}'}, cache=shared) == 2


def test_definite_and_indefinite_paths():
    assert compile_json_path("$.a.b[0]").definite
    assert compile_json_path("$['a']").definite
    assert compile_json_path("a.b").definite
    assert compile_json_path("$").definite
    for path in ("$.a[*]", "$..a", "$.a[0,1]", "$.a[0:2]", "$.a[?(@.b > 1)]", "$.*",
                 "$['a','b']", "$.a.`len`"):
        assert not compile_json_path(path).definite, path


def test_invalid_paths():
    for path in ("$[", "$.a[?(@.b >)]", "$$", "[[["):
        with pytest.raises(InvalidArgument):
            compile_json_path(path)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10) | st.text("ab", max_size=2),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from(["a", "b", "c"]), children, max_size=3),
    max_leaves=12)
definite_paths = st.lists(
    st.one_of(st.sampled_from([".a", ".b", ".c", "['a']"]),
              st.integers(-3, 3).map(lambda i: f"[{i}]")),
    max_size=4).map(lambda steps: "$" + "".join(steps))


@settings(max_examples=300, deadline=None)
@given(document=json_values, path=definite_paths)
def test_definite_fast_path_agrees_with_jsonpath_ng(document, path):
    compiled = compile_json_path(path)
    assert compiled.definite
    matches = [m.value for m in compiled.expression.find(document)]
    assert len(matches) <= 1
    assert compiled.find(document) == (matches[0] if matches else None)


# -- the registry ---------------------------------------------------------------------------

def test_the_registry_holds_json_path():
    assert FUNCTIONS["jsonPath"].min_args == FUNCTIONS["jsonPath"].max_args == 2


def test_a_registered_function_is_callable_and_prepared(monkeypatch):
    prepared = []

    def prepare(value):
        prepared.append(value)
        if value == "bad":
            raise InvalidArgument("bad suffix")
        return value.upper()

    def suffix(scope, pos, text, tail):
        return f"{text}{tail}"

    monkeypatch.setitem(FUNCTIONS, "suffix", Function("suffix", suffix, 2, 2, {1: prepare}))
    template = compile_template("{#suffix(#s, 'x')}")
    assert prepared == ["x"]
    assert template.evaluate({"s": "a"}) == "aX"
    assert template.evaluate({"s": "b"}) == "bX"
    assert prepared == ["x"]   # prepared once, at compile time
    with pytest.raises(ExpressionError) as info:
        compile_template("{#suffix(#s, 'bad')}")
    assert info.value.position == 13 and "bad suffix" in info.value.message


# -- regular expressions ---------------------------------------------------------------------

SAFE_PATTERNS = ["a.*", ".*foo.*", "[a-z]+@[a-z]+\\.com", "(\\d+,)*\\d+", "([a-z]+\\.)+[a-z]+",
                 "(\\d{1,3}\\.){3}\\d{1,3}", "(?:ab|cd)*", "(?i)(foo|bar)+", "https?://.*",
                 "[^,]*(,[^,]*)*", "^\\w+$", "(?=.*\\d).{8,}", "v\\d+\\.\\d+(\\.\\d+)?",
                 "(a|b)*c", "x{2,5}y", "(ab?)*"]
UNSAFE_PATTERNS = ["(a+)+", "(a*)*", "(a|a)*", "(a|ab)*", "(\\w+\\s?)*", "(.*,)*",
                   "(?:(?i:a)|A)*", "(\\d+\\d)*", "(a)\\1", "(?P<x>a)(?P=x)",
                   "(a)?(?(1)b|c)", "(x{1,10}){1,10}y", "((ab)*)*", "a{1,100}" * 5]


@pytest.mark.parametrize("pattern", SAFE_PATTERNS)
def test_safe_patterns_are_accepted(pattern):
    compile_regex(pattern)


@pytest.mark.parametrize("pattern", UNSAFE_PATTERNS)
def test_unsafe_patterns_are_refused(pattern):
    with pytest.raises(InvalidArgument):
        compile_regex(pattern)


@pytest.mark.parametrize("pattern, subject, expected", [
    ("(\\d+,)*\\d+", "1,22,333", True), ("(\\d+,)*\\d+", "1,22,", False),
    ("([a-z]+\\.)+[a-z]+", "www.example.com", True), ("(?i)(foo|bar)+", "FooBARfoo", True),
    ("(ab?)*", "abaab", True), ("(ab?)*", "abb", False), ("x{2,5}y", "xxxy", True),
])
def test_safe_patterns_match_like_python(pattern, subject, expected):
    assert compile_template("{#s matches #p}").evaluate({"s": subject, "p": pattern}) is expected


def test_regex_cost_model_bounds_the_subject():
    regex = compile_regex(".*.*x")
    assert regex.degree == 2
    regex.check(1000, False, None)
    with pytest.raises(ExpressionError, match="too costly"):
        regex.check(100_000, False, None)


# -- the object protocol --------------------------------------------------------------------

def test_el_properties_is_read_at_each_access_and_only_then():
    class Counting:
        calls = 0

        def el_properties(self):
            Counting.calls += 1
            return {"a": {"b": 1}}

    obj = Counting()
    template = compile_template("{#o.a.b + #o['a'].b}")
    assert Counting.calls == 0
    assert template.evaluate({"o": obj}) == 2
    assert Counting.calls == 2
    assert compile_template("{#o == null}").evaluate({"o": obj}) is False
    assert Counting.calls == 2


def test_el_properties_may_return_any_mapping():
    class Lazy(dict):
        pass

    view = View(data=Lazy(x=1))
    assert compile_template("{#v.data.x}").evaluate({"v": view}) == 1


def test_patterns_run_on_re2_and_lookaround_on_the_analysed_fallback():
    assert type(compile_regex("(\\d+,)*\\d+").compiled).__module__.startswith("re2")
    lookahead = compile_regex("(?=.*\\d).{8,}")
    assert isinstance(lookahead.compiled, re.Pattern)      # RE2 has no lookaround
    assert compile_template("{#s matches #p}").evaluate(
        {"s": "abcdefg1", "p": "(?=.*\\d).{8,}"}) is True


def test_re2_limits_are_invalid_patterns_and_classes_are_ascii_like_java():
    with pytest.raises(InvalidArgument, match="invalid regular expression"):
        compile_regex("a{1,1001}")
    # \d, \w, \s are ASCII, as in Java (Gravitee's engine): an Arabic-Indic digit is not \d
    assert compile_template("{#s matches '\\d+'}").evaluate({"s": "\u0663"}) is False

