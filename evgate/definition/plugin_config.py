"""Plugin configurations as pydantic models: one per connector and policy, declared by the plugin.

A plugin class names its model in `configuration_model`; from that one declaration come

- validation (`problems`): pydantic's checks turned into `(sub-path, message)` pairs relative
  to the configuration (`.rate.limit`, `.addHeaders[0].name`), with the plugin's own messages
  where a field carries `checked("...")`; a field whose checks pydantic cannot express (a JAAS
  string, store shapes) carries `Problems(function)` and is checked by that function instead;
- secrets (`secret_fields`): fields typed `Annotated[str | None, Secret()]`; masking, the
  `****` round trip and sealing at rest find them from the model (evgate/security/
  secret_fields.py), so a new secret is declared once, on the model;
- JSON schemas (`json_schema`) for the plugin catalogue, secrets marked `writeOnly` and
  `format: password`.

Models allow unknown fields (Gravitee definitions carry fields evgate does not use) and are
used for checking and describing only: a plugin still reads its configuration as a dict.
"""
from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from pydantic import BaseModel, ConfigDict, Field, ValidationError, WrapValidator


def _schema_extra(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """A field that must be given but is declared with a None default (so that its own
    message is reported, see `required`) is still `required` in the schema."""
    needed = [info.alias or name for name, info in model.model_fields.items()
              if info.validate_default and info.default is None]
    if needed:
        schema["required"] = sorted(set(schema.get("required", [])) | set(needed))


class PluginConfiguration(BaseModel):
    """Base of every plugin configuration model."""
    model_config = ConfigDict(extra="allow", populate_by_name=True,
                              json_schema_extra=_schema_extra)


class EmptyConfiguration(PluginConfiguration):
    """A plugin that takes no configuration (any object is accepted)."""


@dataclass(frozen=True)
class Secret:
    """Marks a field as secret: `****` in responses, sealed at rest.

    - `sent_to`: field paths (from the configuration's root) naming where the secret is sent;
      a `****` keeps the stored secret only while they are unchanged, else an editor could
      redirect a secret they cannot read to a server of theirs;
    - `mask` / `is_masked` / `unmask`: for a value that is only partly secret (a JAAS string
      keeps its username): how to mask it, whether a sent value is masked, and how to put the
      stored secret back into a sent value (None when the stored value has none)."""
    sent_to: tuple[tuple[str, ...], ...] = ()
    mask: Callable[[str], str] | None = None
    is_masked: Callable[[str], bool] | None = None
    unmask: Callable[[str, str], str | None] | None = None

    def __get_pydantic_json_schema__(self, schema: Any, handler: Any) -> dict[str, Any]:
        result = handler(schema)
        result.update({"writeOnly": True, "format": "password", "x-evgate-secret": True})
        return result

    def __hash__(self) -> int:  # the callables need not be hashable for pydantic's caches
        return id(self)


@dataclass(frozen=True)
class Problems:
    """A field checked by `check(value) -> [(sub-path, message)]` (sub-paths relative to the
    configuration) instead of by its type; its type still describes it in the JSON schema."""
    check: Callable[[Any], Iterable[tuple[str, str]]]

    def __hash__(self) -> int:
        return id(self)


def checked(message: str) -> Any:
    """Annotation: any failure of the field's own type is reported as `message`, at the
    field (not at a list index or a nested field), as the plugin's docs say it."""
    def wrap(value: Any, handler: Any) -> Any:
        try:
            return handler(value)
        except ValidationError:
            raise ValueError(message) from None
    return WrapValidator(wrap)


def must_be(types: type | tuple[type, ...], message: str) -> Any:
    """Annotation: a value given (not null) that is not of `types` is reported as `message`;
    a value of the right kind is then checked by the field's type, nested fields at their own
    paths."""
    def wrap(value: Any, handler: Any) -> Any:
        if value is not None and not isinstance(value, types):
            raise ValueError(message)
        return handler(value)
    return WrapValidator(wrap)


def non_empty(message: str) -> Any:
    """Annotation: a string with more than white space, else `message`."""
    def wrap(value: Any, handler: Any) -> Any:
        if not isinstance(value, str) or not value.strip():
            raise ValueError(message)
        return handler(value)
    return WrapValidator(wrap)


def required(message: str = "is required") -> Any:
    """Annotation for a field whose default is None but that must be given (its own message
    instead of pydantic's 'Field required'); use with `Field(None, validate_default=True)`."""
    def wrap(value: Any, handler: Any) -> Any:
        if value is None:
            raise ValueError(message)
        return handler(value)
    return WrapValidator(wrap)


# -- validation -------------------------------------------------------------------------------
def _sub_path(loc: tuple[Any, ...]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)


def _message(error: dict[str, Any]) -> str:
    if error["type"] == "missing":
        return "is required"
    return error["msg"].removeprefix("Value error, ")


def problems(model: type[BaseModel] | None, configuration: Any) -> list[tuple[str, str]]:
    """`(sub-path, message)` for every problem of `configuration` against `model`."""
    if model is None:
        return []
    if not isinstance(configuration, dict):
        return [("", "must be an object")]
    found: list[tuple[str, str]] = []
    try:
        model.model_validate(configuration)
    except ValidationError as exc:
        for error in exc.errors():
            # pydantic's validator-internal location parts (e.g. 'function-wrap[wrap()]')
            loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and "[" in p))
            found.append((_sub_path(loc), _message(error)))
    for name, info in model.model_fields.items():
        for meta in info.metadata:
            if isinstance(meta, Problems):
                found += list(meta.check(configuration.get(info.alias or name)))
    return found


# -- secrets ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SecretField:
    path: tuple[str, ...]   # field names from the configuration's root
    secret: Secret


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    """The models an annotation may hold (through Optional, unions and Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    if typing.get_origin(annotation) is typing.Annotated:
        yield from _models_in(typing.get_args(annotation)[0])
        return
    for arg in typing.get_args(annotation):
        yield from _models_in(arg)


def secret_fields(model: type[BaseModel] | None) -> tuple[SecretField, ...]:
    """Every secret field of `model`, nested models included (a model is walked once per
    path, so recursive models end)."""
    if model is None:
        return ()
    return tuple(_secret_fields(model, (), frozenset()))


def _secret_fields(model: type[BaseModel], prefix: tuple[str, ...],
                   seen: frozenset[type]) -> Iterator[SecretField]:
    if model in seen:
        return
    for name, info in model.model_fields.items():
        path = prefix + (info.alias or name,)
        for meta in info.metadata:
            if isinstance(meta, Secret):
                yield SecretField(path, meta)
        for nested in _models_in(info.annotation):
            yield from _secret_fields(nested, path, seen | {model})


# -- JSON schema ------------------------------------------------------------------------------
def json_schema(model: type[BaseModel] | None) -> dict[str, Any]:
    """The JSON schema of a configuration model (what a client may send)."""
    if model is None:
        model = EmptyConfiguration
    return model.model_json_schema(mode="validation")


# -- field types shared by the built-in plugins ---------------------------------------------------
#: true or false, nothing else (null included: a flag given must be a boolean)
Flag = typing.Annotated[bool, Field(strict=True), checked("must be true or false")]
#: true, false or null
OptionalFlag = typing.Annotated[typing.Optional[bool], Field(strict=True),
                                checked("must be true or false")]


def integer(minimum: int, message: str) -> Any:
    """An integer >= `minimum` (not a boolean, not a float), or null."""
    return typing.Annotated[typing.Optional[int], Field(strict=True, ge=minimum), checked(message)]
