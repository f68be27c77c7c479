"""Regular expressions for ``matches`` and ``split``, on RE2 only.

Untrusted patterns meet untrusted subjects here, and a backtracking engine cannot be
interrupted from inside a greenlet. Every pattern is therefore compiled and matched by
google-re2, whose time is linear in the subject whatever the pattern; constructs RE2 does not
have (lookaround, atomic groups, possessive quantifiers, backreferences) are refused when the
pattern is compiled, with a message that names the construct. What stays of the documented
limits (docs/expression-language.md, "Regular expressions") bounds the constant factors: the
pattern's length, the subject's length, and a cost bound of RE2's program size times the
subject's UTF-8 length, RE2's own worst case for one search.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Optional

import re2

from .values import (MAX_COLLECTION_SIZE, MAX_STRING_LENGTH, InvalidArgument, _as_string,
                     _fail, type_name)

MAX_REGEX_LENGTH = 500
#: RE2 program instructions times subject bytes, per search (RE2's worst case is linear in both)
REGEX_COST_BUDGET = 1_500_000

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False     # RE2 logs refused patterns to stderr otherwise
_RE2_OPTIONS.never_capture = True   # only whole matches are used: lets RE2 stay on its DFA
#: per pattern (program + DFA cache; 8 MiB by default): 512 cached patterns stay bounded, and
#: a DFA that cannot fit gives up sooner for the NFA, which the cost bound already prices
_RE2_OPTIONS.max_mem = 1 << 20

_SEE = "patterns run on RE2, linear-time; see docs/expression-language.md"

#: RE2's "invalid perl operator" fragment -> the construct, by prefix
_GROUP_CONSTRUCTS = (
    ("(?<=", "lookbehind (?<=...)"), ("(?<!", "negative lookbehind (?<!...)"),
    ("(?P=", "backreference (?P=name)"), ("(?P>", "recursion (?P>name)"),
    ("(?=", "lookahead (?=...)"), ("(?!", "negative lookahead (?!...)"),
    ("(?>", "atomic group (?>...)"), ("(?(", "conditional group (?(...)...)"),
    ("(?#", "comment group (?#...)"), ("(?|", "branch reset group (?|...)"),
    ("(?&", "recursion (?&name)"), ("(?R", "recursion (?R)"),
    ("(?'", "named group (?'name'...)", "write (?P<name>...) or (?<name>...)"),
)
#: RE2's "invalid escape sequence" fragment -> the construct
_ESCAPES = {
    "\\Z": ("\\Z", "write \\z for the end of the text"),
    "\\k": ("backreference \\k<name>", None),
    "\\u": ("escape \\uFFFF", "write \\x{FFFF}"),
    "\\G": ("\\G (end of the previous match)", None),
}


def _unsupported(construct: str, hint: Optional[str] = None) -> InvalidArgument:
    advice = f" ({hint})" if hint else ""
    return InvalidArgument(f"{construct} is not supported{advice}: {_SEE}")


def _refusal(pattern: str, message: str) -> InvalidArgument:
    """RE2's compile error as a message naming the construct when Python or Java has it."""
    kind, _, fragment = message.partition(": ")
    if kind == "invalid perl operator":
        if fragment == "(?P":       # RE2 cuts "(?P=x)" to "(?P": the pattern says which
            fragment = "(?P=" if "(?P=" in pattern else "(?P>" if "(?P>" in pattern else ""
        for prefix, construct, *hint in _GROUP_CONSTRUCTS:
            if fragment.startswith(prefix):
                return _unsupported(construct, *hint)
        flag = fragment[2:3]
        if flag.isdigit() or flag in ("+", "-") and fragment[3:4].isdigit():
            return _unsupported(f"recursion {fragment})")
        if flag.isalpha() and flag not in "imsU":
            return _unsupported(f"inline flag {fragment})", "RE2 has only i, m, s and U")
    elif kind == "bad repetition operator" and len(fragment) > 1 and fragment.endswith("+"):
        return _unsupported(f"possessive quantifier {fragment}")
    elif kind == "invalid escape sequence" and fragment[:2] in _ESCAPES:
        return _unsupported(*_ESCAPES[fragment[:2]])
    elif kind == "invalid escape sequence" and fragment[1:2].isdigit() and fragment[1] != "0":
        return _unsupported(f"backreference {fragment}")
    elif kind == "invalid escape sequence" and fragment[1:2].isascii():
        return _unsupported(f"escape sequence {fragment}")
    return InvalidArgument(f"invalid regular expression: {message}")


def _silent_difference(pattern: str) -> Optional[tuple[str, str]]:
    """A construct RE2 accepts with another meaning than Python's: ``\\C`` (one byte, which
    could cut a character in two) and ``{,n}`` (literal text in RE2, ``{0,n}`` in Python).
    A lexical walk over a pattern RE2 has already parsed: escapes, ``\\Q...\\E``, classes."""
    i, end, in_class = 0, len(pattern), False
    while i < end:
        c = pattern[i]
        if c == "\\":
            nxt = pattern[i + 1:i + 2]
            if nxt == "C":
                return "\\C (any single byte)", "it could cut a character in two"
            if nxt == "Q":
                stop = pattern.find("\\E", i + 2)
                i = end if stop < 0 else stop + 2
                continue
            i += 2
        elif in_class:
            if pattern.startswith("[:", i) and ":]" in pattern[i + 2:]:
                i = pattern.index(":]", i + 2) + 2
                continue
            in_class = c != "]"
            i += 1
        elif c == "[":
            i += 1
            i += pattern[i:i + 1] == "^"
            i += pattern[i:i + 1] == "]"     # a ']' first in a class is literal
            in_class = True
        elif c == "{" and pattern[i + 1:i + 2] == "," and _is_count(pattern, i + 2):
            return "{,n}", "RE2 reads it as text; write {0,n}"
        else:
            i += 1
    return None


def _is_count(pattern: str, start: int) -> bool:
    stop = pattern.find("}", start)
    return stop > start and pattern[start:stop].isdigit()


class SafeRegex:
    """A pattern compiled by RE2, with the cost of one search (RE2's program size)."""

    __slots__ = ("pattern", "compiled", "program_size", "literal")

    def __init__(self, pattern: str, compiled: Any, literal: Optional[str]) -> None:
        self.pattern = pattern
        self.compiled = compiled
        self.program_size = compiled.programsize
        self.literal = literal      # the pattern is plain text (fast path for split)

    def _refuse_costly(self, text_length: int, data_length: int, pos: Optional[int]) -> None:
        if text_length > MAX_STRING_LENGTH:
            raise _fail(f"subject of a regular expression longer than {MAX_STRING_LENGTH} "
                        "characters", pos)
        if self.program_size * (data_length + 1) > REGEX_COST_BUDGET:
            raise _fail(f"regular expression {self.pattern!r} is too costly for a subject "
                        f"of {text_length} characters", pos)

    def fullmatch(self, subject: Any, pos: Optional[int]) -> bool:
        text = _as_string(subject)
        if text is None:
            raise _fail(f"'matches' needs a string to match, got {type_name(subject)}", pos)
        data = _utf8(text)
        self._refuse_costly(len(text), len(data), pos)
        return self.compiled.fullmatch(data) is not None

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
            parts = self._split_on_matches(text, pos)
        if len(parts) > MAX_COLLECTION_SIZE:
            raise _fail(f"split() would produce more than {MAX_COLLECTION_SIZE} parts", pos)
        while len(parts) > 1 and parts[-1] == "":
            parts.pop()
        if parts == [""] and text:
            return []   # Java: every part was empty ("," split on ",")
        return parts

    def _split_on_matches(self, text: str, pos: Optional[int]) -> list:
        """One RE2 search per part. A search may read to the end of the subject before it
        settles on a match near its start (``a*c|a`` on ``aaaa...``), so each search is
        charged the rest of the subject against one budget: repeated search cannot turn
        quadratic unnoticed."""
        data = _utf8(text)
        self._refuse_costly(len(text), len(data), pos)
        parts: list = []
        last = start = spent = 0
        end = len(data)
        while start <= end and len(parts) <= MAX_COLLECTION_SIZE:
            spent += self.program_size * (end - start + 1)
            if spent > REGEX_COST_BUDGET:
                raise _fail(f"split() on regular expression {self.pattern!r} is too costly "
                            f"for a subject of {len(text)} characters", pos)
            found = self.compiled.search(data, start)
            if found is None:
                break
            m_start, m_end = found.span()
            if m_end > 0:
                parts.append(data[last:m_start].decode("utf-8", "surrogatepass"))
                last = m_end
            # after an empty match, the next search starts one character later (as Java's)
            start = m_end if m_end > m_start else m_end + _char_width(data, m_end)
        parts.append(data[last:].decode("utf-8", "surrogatepass"))
        return parts


def _utf8(text: str) -> bytes:
    """The bytes RE2 reads; a lone surrogate (from JSON's ``\\ud800``) stays one character."""
    return text.encode("utf-8", "surrogatepass")


def _char_width(data: bytes, index: int) -> int:
    """Bytes of the UTF-8 character starting at ``index`` (1 past the end)."""
    if index >= len(data):
        return 1
    lead = data[index]
    return 1 if lead < 0xC0 else 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4


_REGEX_META = frozenset(".^$*+?{}[]\\|()")


@lru_cache(maxsize=512)
def compile_regex(pattern: str) -> SafeRegex:
    """Compile a regular expression (RE2 syntax). Raises ``InvalidArgument`` when it is too
    long, invalid, or uses a construct RE2 lacks (named in the message)."""
    if len(pattern) > MAX_REGEX_LENGTH:
        raise InvalidArgument(f"regular expression longer than {MAX_REGEX_LENGTH} characters")
    try:
        compiled = re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        raise _refusal(pattern, _error_text(exc)) from None
    except UnicodeEncodeError:
        raise InvalidArgument("invalid regular expression: a lone surrogate "
                              "(U+D800 to U+DFFF) is not a character") from None
    construct = _silent_difference(pattern)
    if construct is not None:
        raise _unsupported(*construct)
    literal = pattern if pattern and not (_REGEX_META & set(pattern)) else None
    return SafeRegex(pattern, compiled, literal)


def _error_text(exc: Exception) -> str:
    message = exc.args[0] if exc.args else ""
    if isinstance(message, bytes):
        return message.decode("utf-8", "replace")
    return str(message)


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
