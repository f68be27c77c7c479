"""V4 API definitions: the Gravitee-compatible model and its validation.

`parse_definition(data)` returns an `ApiDefinition` or raises `DefinitionError` listing every
problem by JSON path (`$.listeners[0].entrypoints[0].type`).
"""
from .model import (ApiDefinition, EndpointDefinition, EndpointGroup, EntrypointDefinition,
                    Flow, Listener, PlanDefinition, Step)
from .validate import parse_definition, parse_plan

__all__ = ["ApiDefinition", "EndpointDefinition", "EndpointGroup", "EntrypointDefinition",
           "Flow", "Listener", "PlanDefinition", "Step", "parse_definition", "parse_plan"]
