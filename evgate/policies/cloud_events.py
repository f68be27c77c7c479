"""cloud-events: wrap each message as a CloudEvents 1.0 event (publish and subscribe).

Configuration (Gravitee's, every field an EL template): `id`, `type`, `source`, `subject`.
As in Gravitee's 4.x policy, a field left out falls back to the message header `ce_id`,
`ce_type`, `ce_source`, `ce_subject`; `id` finally falls back to the message id. The
Postman collection's Webhook - Cloud-Events folder configures
`{"type": "demo-events", "id": "{#message.metadata['key']}",
"source": "kafka://{#message.metadata['topic']}/{#message.metadata['partition']}/..."}`.

Like Gravitee (which builds a JSON object with the CloudEvents SDK), evgate uses the
*structured* mode of the JSON event format: the content becomes

    {"specversion": "1.0", "id": ..., "source": ..., "type": ..., "subject"?: ...,
     "time": "<now, RFC 3339 UTC>", "datacontenttype"?: <the message's Content-Type>,
     "data": <content> | "data_base64": "<base64>"}

and the message's `Content-Type` header becomes `application/cloudevents+json`. `data` is the
parsed JSON when the content is JSON (and its Content-Type, if any, is a JSON type), the text
when it is UTF-8 text, else `data_base64`. A message whose `id`, `type` or `source` is empty
or fails to evaluate is dropped (CloudEvents requires them), counted and logged once per
burst.
"""
from __future__ import annotations

import base64
import json
import logging
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..definition.plugin_config import PluginConfiguration
from ..el import ExpressionError, compile_template
from .base import MESSAGE_PHASES, Policy, TemplateField, as_text

if TYPE_CHECKING:
    from ..core.context import ExecutionContext
    from ..core.message import Message

FIELDS = ("id", "type", "source", "subject")
REQUIRED = ("id", "type", "source")
CONTENT_TYPE = "application/cloudevents+json"


class CloudEventsConfiguration(PluginConfiguration):
    id: TemplateField = None
    type: TemplateField = None
    source: TemplateField = None
    subject: TemplateField = None


class CloudEventsPolicy(Policy):
    type = "cloud-events"
    phases = MESSAGE_PHASES
    configuration_model = CloudEventsConfiguration

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.templates = {field: compile_template(self.configuration[field])
                          for field in FIELDS if self.configuration.get(field)}

    def on_message(self, message: "Message", ctx: "ExecutionContext") -> "Message | None":
        scope = ctx.message_scope(message)
        event: dict[str, Any] = {"specversion": "1.0"}
        try:
            for field in FIELDS:
                template = self.templates.get(field)
                if template is not None:
                    value = as_text(template.evaluate(scope.variables, cache=scope.cache))
                else:
                    value = message.header(f"ce_{field}")
                if not value and field == "id":
                    value = message.id
                if not value:
                    if field in REQUIRED:
                        raise ExpressionError(f"the CloudEvent {field} is empty")
                    continue
                event[field] = value
        except ExpressionError as exc:
            self.errors += 1
            self.burst_log(logging.WARNING, "API %s: cloud-events failed on message %s: %s; "
                           "message dropped", getattr(self.api, "id", None), message.id, exc)
            return None
        event["time"] = datetime.now(timezone.utc).isoformat(timespec="milliseconds") \
            .replace("+00:00", "Z")
        content_type = _pop_content_type(message.headers)
        if content_type:
            event["datacontenttype"] = content_type
        event.update(_data(message.content, content_type))
        message.content = json.dumps(event, separators=(",", ":"),
                                     ensure_ascii=False).encode("utf-8")
        message.headers["content-type"] = [CONTENT_TYPE]
        return message


def _pop_content_type(headers: dict[str, list[str]]) -> str | None:
    found = None
    for name in [n for n in headers if n.lower() == "content-type"]:
        values = headers.pop(name)
        if values and found is None:
            found = values[0]
    return found


def _data(content: bytes, content_type: str | None) -> dict[str, Any]:
    kind = (content_type or "").split(";")[0].strip().lower()
    if not kind or kind.endswith("json") or kind.endswith("+json"):
        try:
            return {"data": json.loads(content)}
        except ValueError:
            if kind:   # declared JSON but is not: keep it intact
                return {"data_base64": base64.b64encode(content).decode("ascii")}
    if not kind or kind.startswith("text/") or kind.endswith("xml"):
        try:
            return {"data": content.decode("utf-8")}
        except UnicodeDecodeError:
            pass
    return {"data_base64": base64.b64encode(content).decode("ascii")}
