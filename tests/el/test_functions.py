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

PATTERNS = ["a.*", ".*foo.*", "[a-z]+@[a-z]+\\.com", "(\\d+,)*\\d+", "([a-z]+\\.)+[a-z]+",
            "(\\d{1,3}\\.){3}\\d{1,3}", "(?:ab|cd)*", "(?i)(foo|bar)+", "https?://.*",
            "[^,]*(,[^,]*)*", "^\\w+$", "v\\d+\\.\\d+(\\.\\d+)?", "(a|b)*c", "x{2,5}y", "(ab?)*",
            # refused by the backtracking-era analyser, plain linear-time patterns on RE2
            "(a+)+", "(a*)*", "(a|a)*", "(a|ab)*", "(\\w+\\s?)*", "(.*,)*", "(?:(?i:a)|A)*",
            "(\\d+\\d)*", "(x{1,10}){1,10}y", "((ab)*)*", "a{1,100}" * 5]


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("subject", ["", "a", "aab", "ab,cd", "1,22,333", "xxxxy", "FOObar",
                                     "www.example.com", "abab", "aaaaaaaaaaaaaaaaaaaaa!"])
def test_patterns_match_as_python_does_on_their_common_syntax(pattern, subject):
    compiled = compile_regex(pattern)
    assert type(compiled.compiled).__module__.startswith("re2")
    expected = re.fullmatch(pattern, subject, re.ASCII) is not None
    assert compile_template("{#s matches #p}").evaluate({"s": subject, "p": pattern}) \
        is expected


SEE = "patterns run on RE2, linear-time; see docs/expression-language.md"
UNSUPPORTED = [
    ("(?=.*\\d).{8,}", "lookahead (?=...)"), ("a(?!b)", "negative lookahead (?!...)"),
    ("(?<=a)b", "lookbehind (?<=...)"), ("(?<!a)b", "negative lookbehind (?<!...)"),
    ("(?>a+)b", "atomic group (?>...)"), ("a*+b", "possessive quantifier *+"),
    ("a++", "possessive quantifier ++"), ("a{2,}+", "possessive quantifier {2,}+"),
    ("(a)\\1", "backreference \\1"), ("(?P<x>a)(?P=x)", "backreference (?P=name)"),
    ("(?<x>a)\\k<x>", "backreference \\k<name>"), ("(a)?(?(1)b|c)", "conditional group"),
    ("a\\Z", "\\Z is not supported (write \\z for the end of the text)"),
    ("\\u00e9", "escape \\uFFFF is not supported (write \\x{FFFF})"),
    ("(?x) a b", "inline flag (?x) is not supported (RE2 has only i, m, s and U)"),
    ("(?#note)a", "comment group (?#...)"), ("(?'n'a)", "named group (?'name'...)"),
    ("a\\C", "\\C (any single byte)"), ("a{,3}", "{,n} is not supported (RE2 reads it as text"),
    ("[\\\\]{,3}x", "{,n} is not supported"),
    ("(a|(?R))", "recursion (?R)"), ("\\h", "escape sequence \\h"),
]


@pytest.mark.parametrize("pattern, construct", UNSUPPORTED)
def test_constructs_re2_lacks_are_refused_by_name(pattern, construct):
    with pytest.raises(InvalidArgument) as info:
        compile_regex(pattern)
    assert str(info.value).startswith(construct) and str(info.value).endswith(SEE)


@pytest.mark.parametrize("pattern", ["(", "a**", "[z-a]", "a{1,1001}", "x\ud800"])
def test_invalid_patterns_say_so(pattern):
    with pytest.raises(InvalidArgument, match="^invalid regular expression: "):
        compile_regex(pattern)


@pytest.mark.parametrize("pattern", ["[{,3}]", "\\{,3}", "\\Q{,3}\\E", "[[:digit:]]{0,3}"])
def test_braces_that_are_text_in_both_engines_are_accepted(pattern):
    compile_regex(pattern)


@pytest.mark.parametrize("source, ctx, expected", [
    # \d, \w, \s and \b are ASCII, as in Java (Gravitee's engine); Python's are Unicode
    ("{#s matches '\\d+'}", {"s": "\u0663"}, False),
    ("{#s matches '\\w+'}", {"s": "é"}, False),
    ("{#s matches '\\s'}", {"s": "\x0b"}, False),          # RE2's \s has no vertical tab
    ("{#s matches '\\p{L}+'}", {"s": "éü"}, True),          # Unicode classes: \p{...}
    ("{#s matches '[[:alpha:]]+'}", {"s": "abc"}, True),    # POSIX classes inside [...]
    ("{#s matches '(?i)k'}", {"s": "\u212a"}, True),        # case folding is Unicode
    ("{#s matches '(?P<n>a)(?<m>b)'}", {"s": "ab"}, True),  # both named-group spellings
    ("{#s matches 'a\\z'}", {"s": "a"}, True),
    ("{#s matches '\\x{e9}'}", {"s": "é"}, True),
    ("{#s matches 'a.b'}", {"s": "a\ud800b"}, True),        # a lone surrogate is one character
    ("{#s.split('\\s*,\\s*')}", {"s": "a\ud800 , b"}, ["a\ud800", "b"]),
    ("{#s.split('')}", {"s": "éaé"}, ["é", "a", "é"]),     # empty matches step a character
    ("{#s.split('x*')}", {"s": "abc"}, ["a", "b", "c"]),
    ("{#s.split('\\d+')}", {"s": "1a22b333"}, ["", "a", "b"]),
])
def test_re2_syntax_and_semantics_that_differ_from_python(source, ctx, expected):
    assert compile_template(source).evaluate(ctx) == expected


def test_regex_cost_is_re2_program_size_times_the_subject():
    big = compile_regex("(.?){1000}x")          # about 9,000 instructions
    assert big.fullmatch("a" * 100, None) is False
    with pytest.raises(ExpressionError, match="too costly for a subject of 1000 characters"):
        big.fullmatch("a" * 1000, None)
    # a small program accepts long subjects
    assert compile_regex("a*x").fullmatch("a" * 200_000 + "x", None) is True


def test_split_is_charged_every_search_so_repeated_search_stays_bounded():
    # Each search for `a*c|a` reads to the end of the subject: n searches would cost n^2.
    assert compile_regex("a*c|a").split("a" * 50, None) == []
    with pytest.raises(ExpressionError, match="split\\(\\) on regular expression .* too costly"):
        compile_regex("a*c|a").split("a" * 5000, None)
    assert compile_regex("\\s*,\\s*").split("a , b,c" * 100, None)[:3] == ["a", "b", "ca"]


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
