"""Regular expressions for ``matches`` and ``split``: matched by RE2, checked once at compile.

Untrusted patterns meet untrusted subjects here, and a backtracking engine cannot be
interrupted from inside a greenlet. Matching therefore runs on google-re2 (linear time in
the subject, whatever the pattern). A pattern is also checked once, at compile time, against
the documented limits (docs/expression-language.md, "Regular expressions"): length, no
backreferences or conditional groups, no nested variable quantifiers, distinct alternatives
in repeated groups, and a cost bound on the subject's length. Those limits predate RE2 and
stay: definitions that passed them keep passing, and the few constructs RE2 does not have
(lookaround, atomic groups, possessive quantifiers) still run, on Python's ``re``, bounded by
exactly those checks.
"""
from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any, Callable, Optional

import re2

from .values import (MAX_COLLECTION_SIZE, MAX_STRING_LENGTH, InvalidArgument, _as_string,
                     _fail, type_name)

try:  # Python 3.11+ (python_requires >= 3.11); sre_parse is the deprecated alias.
    from re import _constants as _sre
    from re import _parser as _sre_parse
except ImportError:  # pragma: no cover
    import sre_constants as _sre  # type: ignore[no-redef]
    import sre_parse as _sre_parse  # type: ignore[no-redef]

MAX_REGEX_LENGTH = 500
REGEX_COST_BUDGET = 10_000_000
MAX_REGEX_DEGREE = 6

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False     # RE2 logs refused patterns to stderr otherwise
#: RE2's messages for what Python's syntax has and RE2 lacks (run on ``re``, analysed)
_RE2_LACKS = ("invalid perl operator", "bad repetition operator", "invalid escape sequence")


# ---------------------------------------------------------------------------------------
# Regular expressions without catastrophic backtracking
#
# Python's re backtracks, and cannot be interrupted from inside a greenlet. Rather than a
# timeout, a pattern is analysed once (with re's own parser) and refused when it could take
# exponential time: a variable-length quantifier inside another repeated group, unless the
# inner repeat is a single-character class followed by a character it cannot match
# (`(\d+,)*`, `([a-z]+\.)+` are fine; `(a+)+`, `(\w+\w?)*` are not); alternatives inside a
# repeated group that can start with the same character (`(a|ab)*`); backreferences. The
# remaining patterns take at most about `coefficient * n ** degree` steps on a subject of n
# characters, where `degree` counts the unbounded quantifiers in sequence (`.*a.*` is 2);
# a subject that would exceed REGEX_COST_BUDGET steps is refused before matching.

_SINGLE_CHAR_OPS = frozenset([_sre.LITERAL, _sre.NOT_LITERAL, _sre.ANY, _sre.IN])
_REPEAT_OPS = frozenset(op for op in (
    getattr(_sre, "MAX_REPEAT", None), getattr(_sre, "MIN_REPEAT", None),
    getattr(_sre, "POSSESSIVE_REPEAT", None)) if op is not None)
_ATOMIC_GROUP = getattr(_sre, "ATOMIC_GROUP", None)
_MAXREPEAT = _sre.MAXREPEAT
_MAX_FINITE_CLASS = 2048

_CATEGORY_TESTS: dict[Any, Callable[[str], bool]] = {
    _sre.CATEGORY_DIGIT: str.isdecimal,
    _sre.CATEGORY_NOT_DIGIT: lambda c: not c.isdecimal(),
    _sre.CATEGORY_SPACE: str.isspace,
    _sre.CATEGORY_NOT_SPACE: lambda c: not c.isspace(),
    _sre.CATEGORY_WORD: lambda c: c.isalnum() or c == "_",
    _sre.CATEGORY_NOT_WORD: lambda c: not (c.isalnum() or c == "_"),
    _sre.CATEGORY_LINEBREAK: lambda c: c == "\n",
    _sre.CATEGORY_NOT_LINEBREAK: lambda c: c != "\n",
}


class _CharClass:
    """What one single-character item may match: a finite set when known, and a test
    that over-approximates the item (never says False for a character it can match)."""

    __slots__ = ("chars", "test")

    def __init__(self, chars: Optional[frozenset], test: Callable[[str], bool]) -> None:
        self.chars = chars
        self.test = test

    def disjoint(self, other: "_CharClass") -> bool:
        if self.chars is not None:
            return not any(other.test(c) for c in self.chars)
        if other.chars is not None:
            return not any(self.test(c) for c in other.chars)
        return False


def _variants(c: str, ignorecase: bool) -> set:
    return {c, c.lower(), c.upper(), c.swapcase()} if ignorecase else {c}


def _char_class(item: tuple, ignorecase: bool, unicode_classes: bool) -> Optional[_CharClass]:
    op, av = item
    if op is _sre.LITERAL:
        chars = frozenset(_variants(chr(av), ignorecase))
        return _CharClass(chars, chars.__contains__)
    if op is _sre.NOT_LITERAL:
        excluded = chr(av)
        return _CharClass(None, lambda c: c != excluded)
    if op is _sre.ANY:
        return _CharClass(None, lambda c: True)
    if op is not _sre.IN:
        return None
    chars: set = set()
    tests: list = []
    finite = True
    negated = False
    for sub_op, sub_av in av:
        if sub_op is _sre.NEGATE:
            negated = True
        elif sub_op is _sre.LITERAL:
            chars |= _variants(chr(sub_av), ignorecase)
        elif sub_op is _sre.RANGE:
            low, high = sub_av
            if high - low > _MAX_FINITE_CLASS:
                finite = False
                tests.append(lambda c, lo=low, hi=high: any(
                    lo <= ord(v) <= hi for v in _variants(c, True)))
            else:
                for code in range(low, high + 1):
                    chars |= _variants(chr(code), ignorecase)
        elif sub_op is _sre.CATEGORY and unicode_classes and sub_av in _CATEGORY_TESTS:
            finite = False
            tests.append(_CATEGORY_TESTS[sub_av])
        else:
            return _CharClass(None, lambda c: True)
    if negated:
        if not finite:
            return _CharClass(None, lambda c: True)
        # [^...] of literals and ranges: everything outside the (unexpanded) set, which
        # over-approximates the class under IGNORECASE too.
        excluded = frozenset(chars)
        return _CharClass(None, lambda c: c not in excluded)
    frozen = frozenset(chars)
    if finite and len(frozen) <= _MAX_FINITE_CLASS:
        return _CharClass(frozen, frozen.__contains__)
    return _CharClass(None, lambda c: c in frozen or any(test(v) for test in tests
                                                           for v in _variants(c, True)))


class _RegexAnalysis:
    def __init__(self, ignorecase: bool, unicode_classes: bool) -> None:
        self.ignorecase = ignorecase
        self.unicode_classes = unicode_classes

    def first_class(self, items: list) -> Optional[_CharClass]:
        """The class of the first character a sequence must consume, if known."""
        for op, av in items:
            if op is _sre.AT:
                continue
            if op in _SINGLE_CHAR_OPS:
                return _char_class((op, av), self.ignorecase, self.unicode_classes)
            if op is _sre.SUBPATTERN:
                return self.first_class(list(av[3]))
            if op in _REPEAT_OPS and av[0] >= 1:
                return self.first_class(list(av[2]))
            return None
        return None

    def single_char_body(self, body: list) -> Optional[_CharClass]:
        if len(body) == 1 and body[0][0] in _SINGLE_CHAR_OPS:
            return _char_class(body[0], self.ignorecase, self.unicode_classes)
        return None

    def sequence(self, items: list, follow: Optional[_CharClass], inside: bool
                 ) -> tuple[float, int]:
        coefficient, degree = 1.0, 0
        for index, (op, av) in enumerate(items):
            if index + 1 < len(items):
                nxt = items[index + 1]
                after = (_char_class(nxt, self.ignorecase, self.unicode_classes)
                         if nxt[0] in _SINGLE_CHAR_OPS else None)
            else:
                after = follow
            c, d = self.item(op, av, after, inside)
            coefficient *= c
            degree += d
            if coefficient > 1e300:
                coefficient = math.inf
        return coefficient, degree

    def item(self, op: Any, av: Any, follow: Optional[_CharClass], inside: bool
             ) -> tuple[float, int]:
        if op in _SINGLE_CHAR_OPS or op is _sre.AT:
            return 1.0, 0
        if op is _sre.SUBPATTERN:
            return self.sequence(list(av[3]), follow, inside)
        if op is _ATOMIC_GROUP:
            return self.sequence(list(av), follow, inside)
        if op is _sre.ASSERT or op is _sre.ASSERT_NOT:
            return self.sequence(list(av[1]), None, inside)
        if op is _sre.BRANCH:
            branches = [list(b) for b in av[1]]
            costs = [self.sequence(b, follow, inside) for b in branches]
            degree = max(d for _, d in costs)
            firsts = [self.first_class(b) for b in branches]
            disjoint = all(f is not None for f in firsts) and all(
                firsts[i].disjoint(firsts[j])  # type: ignore[union-attr]
                for i in range(len(firsts)) for j in range(i + 1, len(firsts)))
            if disjoint:
                return max(c for c, _ in costs), degree
            if inside:
                raise InvalidArgument(
                    "alternatives inside a repeated group must start with different "
                    "characters (the pattern could take exponential time)")
            return sum(c for c, _ in costs), degree
        if op in _REPEAT_OPS:
            low, high, body = av[0], av[1], list(av[2])
            if low == high:
                c, d = self.sequence(body, self.first_class(body) or follow,
                                     inside or high > 1)
                return _power(c, high), d * high
            if inside:
                # A variable repeat inside a repeated group: fine only when it is a
                # single-character class that cannot eat the character after it.
                own = self.single_char_body(body)
                if own is not None and follow is not None and own.disjoint(follow):
                    return 1.0, 0
                raise InvalidArgument(
                    "nested quantifiers are not allowed (the pattern could take "
                    "exponential time); make the inner repeat a character class "
                    "followed by a character it cannot match")
            first = self.first_class(body)
            if high == _MAXREPEAT:
                c, d = self.sequence(body, first, True)
                if c > 1 or d > 0:
                    raise InvalidArgument("nested quantifiers are not allowed (the pattern "
                                          "could take exponential time)")
                return 1.0, 1
            c, d = self.sequence(body, first, high > 1)
            return (high - low + 1) * _power(c, high), d * high
        if op in (_sre.GROUPREF, _sre.GROUPREF_EXISTS):
            raise InvalidArgument("backreferences are not allowed in regular expressions")
        raise InvalidArgument(f"unsupported regular expression construct ({op})")


def _power(base: float, exponent: int) -> float:
    if base <= 1.0:
        return 1.0
    try:
        return min(base ** exponent, math.inf)
    except OverflowError:
        return math.inf


def _local_flags(items: Any) -> int:
    """The union of the inline flags of every group, e.g. ``(?i:...)``: the analysis
    applies them to the whole pattern, which only makes it more cautious."""
    flags = 0
    stack = [items]
    while stack:
        for op, av in stack.pop():
            if op is _sre.SUBPATTERN:
                flags |= av[1]
                stack.append(av[3])
            elif op is _sre.BRANCH:
                stack.extend(av[1])
            elif op in _REPEAT_OPS:
                stack.append(av[2])
            elif op is _ATOMIC_GROUP:
                stack.append(av)
            elif op is _sre.ASSERT or op is _sre.ASSERT_NOT:
                stack.append(av[1])
            elif op is _sre.GROUPREF_EXISTS:
                stack.extend(x for x in av[1:] if x is not None)
    return flags


class SafeRegex:
    """A regular expression that passed the analysis above, with its cost model.
    ``compiled`` is an RE2 pattern, or an ``re.Pattern`` for lookaround and the like;
    both offer ``fullmatch`` and ``finditer``."""

    __slots__ = ("pattern", "compiled", "coefficient", "degree", "literal")

    def __init__(self, pattern: str, compiled: Any, coefficient: float, degree: int,
                 literal: Optional[str]) -> None:
        self.pattern = pattern
        self.compiled = compiled
        self.coefficient = coefficient
        self.degree = degree
        self.literal = literal      # the pattern is plain text (fast path for split)

    def check(self, length: int, search: bool, pos: Optional[int]) -> None:
        if length > MAX_STRING_LENGTH:
            raise _fail(f"subject of a regular expression longer than {MAX_STRING_LENGTH} "
                        "characters", pos)
        degree = self.degree + (1 if search else 0)
        if degree and self.coefficient * float(length + 1) ** degree > REGEX_COST_BUDGET:
            raise _fail(f"regular expression {self.pattern!r} is too costly for a subject "
                        f"of {length} characters", pos)

    def fullmatch(self, subject: Any, pos: Optional[int]) -> bool:
        text = _as_string(subject)
        if text is None:
            raise _fail(f"'matches' needs a string to match, got {type_name(subject)}", pos)
        self.check(len(text), False, pos)
        return self.compiled.fullmatch(text) is not None

    def split(self, text: str, pos: Optional[int]) -> list:
        """Java's String.split(regex): no leading empty string for a zero-width match at
        the start, trailing empty strings removed, ``""`` splits to ``[""]``."""
        if not text:
            return [""]
        if self.literal:
            if len(text) > MAX_STRING_LENGTH:
                raise _fail(f"cannot split a string longer than {MAX_STRING_LENGTH} "
                            "characters", pos)
            parts = text.split(self.literal, MAX_COLLECTION_SIZE)
        else:
            self.check(len(text), True, pos)
            parts = []
            last = 0
            for m in self.compiled.finditer(text):
                if m.end() == 0:
                    continue
                parts.append(text[last:m.start()])
                last = m.end()
                if len(parts) > MAX_COLLECTION_SIZE:
                    break
            parts.append(text[last:])
        if len(parts) > MAX_COLLECTION_SIZE:
            raise _fail(f"split() would produce more than {MAX_COLLECTION_SIZE} parts", pos)
        while len(parts) > 1 and parts[-1] == "":
            parts.pop()
        if parts == [""] and text:
            return []   # Java: every part was empty ("," split on ",")
        return parts


_REGEX_META = frozenset(".^$*+?{}[]\\|()")


@lru_cache(maxsize=512)
def compile_regex(pattern: str) -> SafeRegex:
    """Check and compile a regular expression (Python ``re`` syntax). Raises
    ``InvalidArgument`` when it is too long, invalid, or could backtrack catastrophically."""
    if len(pattern) > MAX_REGEX_LENGTH:
        raise InvalidArgument(f"regular expression longer than {MAX_REGEX_LENGTH} characters")
    try:
        parsed = _sre_parse.parse(pattern, 0)
        compiled = re.compile(pattern)
    except (re.error, OverflowError, RecursionError, ValueError) as exc:
        raise InvalidArgument(f"invalid regular expression: {exc}") from None
    flags = compiled.flags | _local_flags(parsed)
    analysis = _RegexAnalysis(bool(flags & re.IGNORECASE),
                              unicode_classes=not (flags & (re.ASCII | re.LOCALE)))
    try:
        coefficient, degree = analysis.sequence(list(parsed), None, False)
    except RecursionError:
        raise InvalidArgument("regular expression is nested too deeply") from None
    if coefficient > REGEX_COST_BUDGET or degree > MAX_REGEX_DEGREE:
        raise InvalidArgument("regular expression is too complex")
    literal = pattern if pattern and not (_REGEX_META & set(pattern)) else None
    return SafeRegex(pattern, _re2_or(pattern, compiled), coefficient, degree, literal)


def _re2_or(pattern: str, fallback: re.Pattern) -> Any:
    """The pattern compiled by RE2; `fallback` (Python's) for a construct RE2 does not
    have, which the analysis above has bounded. Other RE2 refusals (a repeat count over
    1000, an over-large program) are invalid patterns."""
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        message = exc.args[0].decode("utf-8", "replace") if exc.args and \
            isinstance(exc.args[0], bytes) else str(exc)
        if message.startswith(_RE2_LACKS):
            return fallback
        raise InvalidArgument(f"invalid regular expression: {message}") from None


def regex_for(pattern: Any, pos: Optional[int]) -> SafeRegex:
    if isinstance(pattern, SafeRegex):
        return pattern
    text = _as_string(pattern)
    if text is None:
        raise _fail(f"a regular expression must be a string, got {type_name(pattern)}", pos)
    try:
        return compile_regex(text)
    except InvalidArgument as exc:
        raise _fail(str(exc), pos) from None
