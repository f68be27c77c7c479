"""`saslJaasConfig`: parsed (never passed through: librdkafka has no JAAS, it wants
`sasl.username` / `sasl.password`) and masked. Error messages name the option, never its value."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from .common import MASK, _CLASS_NAME, _CONTROL_FLAGS


class JaasError(ValueError):
    """A malformed saslJaasConfig; the message never contains an option's value."""


@dataclass
class JaasConfig:
    module: str
    flag: str
    options: dict[str, str]

    def format(self) -> str:
        """Back to Java syntax (used when a masked password is replaced by the stored one)."""
        parts = [self.module, self.flag]
        for name, value in self.options.items():
            escaped = value.replace("\\", "\\\\").replace('"', '\\"')
            parts.append(f'{name}="{escaped}"')
        return " ".join(parts) + ";"


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}


def _jaas_tokens(text: str) -> Iterator[tuple[str, str, int]]:
    """(kind, value, position): kind is 'word', 'quoted', '=' or ';'. Like Kafka's JaasConfig
    (a java.io.StreamTokenizer): double or single quotes with backslash escapes, bare words,
    // and /* */ comments."""
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char.isspace():
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise JaasError(f"unterminated comment at character {i + 1}")
            i = end + 2
        elif char in "=;":
            yield char, char, i
            i += 1
        elif char in "\"'":
            start, i, out = i, i + 1, []
            while True:
                if i >= n:
                    raise JaasError(f"unterminated quoted value starting at character "
                                    f"{start + 1}")
                c = text[i]
                if c == "\\" and i + 1 < n:
                    out.append(_ESCAPES.get(text[i + 1], text[i + 1]))
                    i += 2
                elif c == char:
                    i += 1
                    break
                else:
                    out.append(c)
                    i += 1
            yield "quoted", "".join(out), start
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] not in "=;\"'" \
                    and not text.startswith("//", i) and not text.startswith("/*", i):
                i += 1
            yield "word", text[start:i], start


def parse_jaas(text: Any) -> JaasConfig:
    """`<LoginModule class> <flag> (name=value)* ;` - exactly one login module, as Kafka's
    clients require."""
    if not isinstance(text, str) or not text.strip():
        raise JaasError("must be a non-empty string "
                        "'<LoginModule> required username=\"...\" password=\"...\";'")
    tokens = list(_jaas_tokens(text))
    if not tokens or tokens[0][0] != "word" or (len(tokens) > 1 and tokens[1][0] == "=") \
            or not _CLASS_NAME.match(tokens[0][1]):
        raise JaasError("must start with a login module class name "
                        "(org.apache.kafka.common.security.plain.PlainLoginModule, ...)")
    module = tokens[0][1]
    if len(tokens) < 2 or tokens[1][0] != "word" or tokens[1][1].lower() not in _CONTROL_FLAGS:
        raise JaasError(f"the login module {module} must be followed by a control flag "
                        f"({', '.join(_CONTROL_FLAGS)})")
    flag = tokens[1][1].lower()
    options: dict[str, str] = {}
    i = 2
    while True:
        if i >= len(tokens):
            raise JaasError("must end with ';'")
        kind, value, pos = tokens[i]
        if kind == ";":
            if i + 1 < len(tokens):
                raise JaasError(f"unexpected text after ';' at character {tokens[i + 1][2] + 1} "
                                "(one login module only)")
            break
        if kind != "word":
            raise JaasError(f"expected an option name at character {pos + 1}")
        name = value
        if i + 1 >= len(tokens) or tokens[i + 1][0] != "=":
            raise JaasError(f"expected '=' after option {name!r}")
        if i + 2 >= len(tokens) or tokens[i + 2][0] not in ("word", "quoted"):
            raise JaasError(f"option {name!r} has no value")
        if name in options:
            raise JaasError(f"option {name!r} is given twice")
        options[name] = tokens[i + 2][1]
        i += 3
    return JaasConfig(module, flag, options)


def mask_jaas(text: str) -> str:
    """The JAAS string with its password replaced by ****; the username stays readable."""
    try:
        jaas = parse_jaas(text)
    except JaasError:
        return MASK
    if "password" in jaas.options:
        jaas.options["password"] = MASK
    return jaas.format()

