"""The `evgate` command line (click).

Every command goes through the same service layer as the management REST API, acting as the
local operator (an ADMIN: whoever runs it can open the database anyway); output is
human-readable by default and JSON with `--json`; errors exit non-zero with one clear line.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
from typing import Any, Callable

import click

from .config import Config, render_markdown
from .errors import ConfigError, ConflictError, DefinitionError, EvgateError, NotFoundError
from .services.principal import LOCAL_OPERATOR  # the CLI acts on the database as an ADMIN


class _State:
    def __init__(self, as_json: bool):
        self.as_json = as_json
        self._config: Config | None = None
        self._repo = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = Config.from_env()
        return self._config

    @property
    def repo(self):
        if self._repo is None:
            from .repository import open_repository
            self._repo = open_repository(self.config.database_url,
                                         secrets_key=self.config.secrets_key)
        return self._repo

    def emit(self, data: Any, human: Callable[[Any], str] | str | None = None) -> None:
        if self.as_json:
            click.echo(json.dumps(data, indent=2, default=str))
        elif callable(human):
            click.echo(human(data))
        elif human is not None:
            click.echo(human)
        else:
            click.echo(json.dumps(data, indent=2, default=str))


pass_state = click.make_pass_decorator(_State)


def _fail(message: str) -> None:
    click.echo(f"evgate: {message}", err=True)
    sys.exit(1)


class _Group(click.Group):
    """Turns evgate's errors into one clear line and a non-zero exit, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DefinitionError as exc:
            lines = "\n".join(f"  {p['path']}: {p['message']}" for p in exc.problems)
            click.echo(f"evgate: invalid API definition:\n{lines}", err=True)
            sys.exit(1)
        except (NotFoundError, ConflictError, ConfigError, EvgateError) as exc:
            _fail(str(exc))


@click.group(cls=_Group)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.version_option(package_name="evgate")
@click.pass_context
def main(ctx: click.Context, as_json: bool) -> None:
    """evgate: an event-native API gateway between Kafka and HTTP.

    Settings come from EVGATE_* environment variables (see `evgate config show`).
    """
    ctx.obj = _State(as_json)
    try:
        from .logs import configure
        configure(ctx.obj.config)
    except ConfigError as exc:
        _fail(str(exc))


# -- serve ----------------------------------------------------------------------------------
def _gunicorn_command(app: str, bind: str | None, workers: int | None) -> list[str]:
    command = [sys.executable, "-m", "gunicorn", "-c", "python:evgate.gunicorn_settings"]
    if bind:
        command += ["--bind", bind]
    if workers:
        command += ["--workers", str(workers)]
    return command + [app]


@main.command()
@click.argument("what", type=click.Choice(["gateway", "management", "both"]), default="both")
@click.option("--gateway-bind", help="Gateway address (default EVGATE_GATEWAY_BIND).")
@click.option("--management-bind", help="Management address (default EVGATE_MANAGEMENT_BIND).")
@click.option("--workers", type=int, help="Gateway worker processes (default EVGATE_WORKERS).")
@pass_state
def serve(state: _State, what: str, gateway_bind: str | None, management_bind: str | None,
          workers: int | None) -> None:
    """Serve the gateway (8082), the management API (8083), or both, with gunicorn + gevent."""
    from .repository.database import upgrade
    upgrade(state.config.database_url)
    if what in ("management", "both") and state.config.admin_password == "admin":
        click.echo("evgate: WARNING: the management password is 'admin' (Gravitee's default, "
                   "used by the Postman collection): for local use only, never expose this "
                   "management API.", err=True)
    commands = []
    if what in ("gateway", "both"):
        commands.append(_gunicorn_command("evgate.wsgi_apps:gateway_app()",
                                          gateway_bind or state.config.gateway_bind, workers))
    if what in ("management", "both"):
        commands.append(_gunicorn_command("evgate.wsgi_apps:management_app()",
                                          management_bind or state.config.management_bind, 1))
    children = [subprocess.Popen(command) for command in commands]

    def forward(signum: int, _frame: Any) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    codes = [child.wait() for child in children]
    # If one server died, stop the other: a half-running evgate is worse than none.
    forward(signal.SIGTERM, None)
    sys.exit(max(codes))


# -- apis -----------------------------------------------------------------------------------
@main.group()
def apis() -> None:
    """Manage API definitions (V4, Gravitee-compatible)."""


def _api_line(api: dict[str, Any]) -> str:
    paths = ",".join(p.get("path", "") for listener in api.get("listeners", [])
                     for p in listener.get("paths", [])) or "(subscription)"
    return f"{api['id']}  {api['state']:<8} {paths:<30} {api.get('name', '')}"


@apis.command("list")
@pass_state
def apis_list(state: _State) -> None:
    """List stored APIs with their state and listener paths."""
    from .services.apis import ApiService
    items = ApiService(state.repo, LOCAL_OPERATOR).list()
    state.emit(items, lambda data: "\n".join(_api_line(a) for a in data) or "no APIs")


@apis.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@pass_state
def apis_import(state: _State, files: tuple[str, ...]) -> None:
    """Store, deploy and start API definitions from JSON FILES (same id: replaced)."""
    from .services.apis import ApiService
    service = ApiService(state.repo, LOCAL_OPERATOR)
    imported = []
    for path in files:
        with open(path, encoding="utf-8") as handle:
            try:
                definition = json.load(handle)
            except ValueError as exc:
                _fail(f"{path}: not valid JSON: {exc}")
        try:
            imported.append(service.import_definition(definition))
        except DefinitionError as exc:
            lines = "\n".join(f"  {p['path']}: {p['message']}" for p in exc.problems)
            click.echo(f"evgate: {path}: invalid API definition:\n{lines}", err=True)
            sys.exit(1)
        except (ConflictError, EvgateError) as exc:
            _fail(f"{path}: {exc}")
    state.emit(imported, lambda data: "\n".join(f"imported {_api_line(a)}" for a in data))


@apis.command("export")
@click.argument("api_id")
@pass_state
def apis_export(state: _State, api_id: str) -> None:
    """Print an API definition as JSON (re-importable)."""
    from .services.apis import ApiService
    api = ApiService(state.repo, LOCAL_OPERATOR).get(api_id)
    click.echo(json.dumps(api, indent=2, default=str))


def _api_action(name: str, help_text: str) -> None:
    @apis.command(name, help=help_text)
    @click.argument("api_id")
    @pass_state
    def command(state: _State, api_id: str) -> None:
        from .services.apis import ApiService
        service = ApiService(state.repo, LOCAL_OPERATOR)
        result = getattr(service, name)(api_id)
        state.emit({"id": api_id, "action": name, "result": result},
                   f"{name}: {api_id}")


_api_action("start", "Start an API (deploys it first if it never was).")
_api_action("stop", "Stop an API: gateways stop serving it within the sync interval.")
_api_action("deploy", "Deploy the saved definition of an API to the gateways.")
_api_action("delete", "Delete an API and its plans.")


@apis.command("create")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@pass_state
def apis_create(state: _State, file: str) -> None:
    """Store a new API from a JSON FILE (stopped, not deployed: like POST v4/apis)."""
    from .services.apis import ApiService
    api = ApiService(state.repo, LOCAL_OPERATOR).create(_json_file(file))
    state.emit(api, lambda a: f"created {_api_line(a)}")


@apis.command("update")
@click.argument("api_id")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@pass_state
def apis_update(state: _State, api_id: str, file: str) -> None:
    """Replace the saved definition of an API (deploy to make gateways run it)."""
    from .services.apis import ApiService
    api = ApiService(state.repo, LOCAL_OPERATOR).update(api_id, _json_file(file))
    state.emit(api, lambda a: f"updated {_api_line(a)}")


# -- JSON arguments -------------------------------------------------------------------------
def _json_file(path: str) -> Any:
    try:
        if path == "-":
            return json.load(sys.stdin)
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except ValueError as exc:
        _fail(f"{path}: not valid JSON: {exc}")


def _json_option(value: str | None, name: str) -> Any:
    """A JSON option given inline (`'{"a": 1}'`) or from a file (`@conf.json`)."""
    if value is None:
        return None
    if value.startswith("@"):
        return _json_file(value[1:])
    try:
        return json.loads(value)
    except ValueError as exc:
        _fail(f"--{name}: not valid JSON: {exc}")


# -- plans ----------------------------------------------------------------------------------
def _plan_line(plan: dict[str, Any]) -> str:
    return (f"{plan['id']}  {plan['status']:<10} {plan['security']['type']:<12} "
            f"{plan.get('validation', 'auto'):<6} {plan.get('name', '')}")


@main.group()
def plans() -> None:
    """Manage the plans of an API (key-less, api-key, jwt, subscription)."""


@plans.command("list")
@click.argument("api_id")
@click.option("--status", help="Comma-separated statuses to show.")
@pass_state
def plans_list(state: _State, api_id: str, status: str | None) -> None:
    """List the plans of an API."""
    from .services.plans import PlanService
    items = PlanService(state.repo, LOCAL_OPERATOR).list(api_id, status)
    state.emit(items, lambda data: "\n".join(_plan_line(p) for p in data) or "no plans")


@plans.command("create")
@click.argument("api_id")
@click.option("--name", help="Plan name.")
@click.option("--security", "security_type", default="key-less", show_default=True,
              help="key-less, api-key, jwt or subscription.")
@click.option("--configuration", help="Security configuration as JSON or @file.")
@click.option("--validation", type=click.Choice(["auto", "manual"]), default="auto",
              show_default=True, help="manual: subscriptions wait for approval.")
@click.option("--file", "file", type=click.Path(exists=True, dir_okay=False),
              help="The whole plan as JSON (overrides the other options).")
@click.option("--publish", is_flag=True, help="Publish the plan right away.")
@pass_state
def plans_create(state: _State, api_id: str, name: str | None, security_type: str,
                 configuration: str | None, validation: str, file: str | None,
                 publish: bool) -> None:
    """Create a plan on an API (staging unless --publish)."""
    from .services.plans import PlanService
    if file:
        body = _json_file(file)
    else:
        body = {"name": name or security_type, "validation": validation,
                "security": {"type": security_type,
                             "configuration": _json_option(configuration, "configuration") or {}}}
    service = PlanService(state.repo, LOCAL_OPERATOR)
    plan = service.create(api_id, body)
    if publish:
        plan = service.publish(api_id, plan["id"])
    state.emit(plan, lambda p: f"created {_plan_line(p)}")


def _plan_action(name: str, help_text: str) -> None:
    @plans.command(name, help=help_text)
    @click.argument("api_id")
    @click.argument("plan_id")
    @pass_state
    def command(state: _State, api_id: str, plan_id: str) -> None:
        from .services.plans import PlanService
        plan = getattr(PlanService(state.repo, LOCAL_OPERATOR), name)(api_id, plan_id)
        if plan is None:
            state.emit({"id": plan_id, "deleted": True}, f"deleted plan {plan_id}")
        else:
            state.emit(plan, lambda p: _plan_line(p))


_plan_action("publish", "Publish a plan: it admits traffic and takes subscriptions.")
_plan_action("deprecate", "Deprecate a plan: existing subscribers keep access, no new ones.")
_plan_action("close", "Close a plan and all its subscriptions (keys revoked).")
_plan_action("delete", "Delete a staging or closed plan.")


# -- applications ---------------------------------------------------------------------------
def _app_line(app: dict[str, Any]) -> str:
    return f"{app['id']}  {app.get('name', '')}"


@main.group()
def applications() -> None:
    """Manage applications (the consumers that subscribe to plans)."""


@applications.command("list")
@pass_state
def applications_list(state: _State) -> None:
    """List applications."""
    from .services.applications import ApplicationService
    items = ApplicationService(state.repo, LOCAL_OPERATOR).list()
    state.emit(items, lambda data: "\n".join(_app_line(a) for a in data) or "no applications")


@applications.command("create")
@click.argument("name")
@click.option("--description", help="Free text.")
@click.option("--type", "app_type", default="simple", show_default=True,
              help="settings.app.type")
@click.option("--client-id", help="settings.app.client_id (matched by jwt plans).")
@pass_state
def applications_create(state: _State, name: str, description: str | None, app_type: str,
                        client_id: str | None) -> None:
    """Create an application."""
    from .services.applications import ApplicationService
    app_settings: dict[str, Any] = {"type": app_type}
    if client_id:
        app_settings["client_id"] = client_id
    app = ApplicationService(state.repo, LOCAL_OPERATOR).create(
        {"name": name, "description": description, "settings": {"app": app_settings}},
        owner="cli")
    state.emit(app, lambda a: f"created application {_app_line(a)}")


@applications.command("get")
@click.argument("app_id")
@pass_state
def applications_get(state: _State, app_id: str) -> None:
    """Show an application."""
    from .services.applications import ApplicationService
    state.emit(ApplicationService(state.repo, LOCAL_OPERATOR).get(app_id))


@applications.command("delete")
@click.argument("app_id")
@pass_state
def applications_delete(state: _State, app_id: str) -> None:
    """Delete an application that has no open subscription."""
    from .services.applications import ApplicationService
    ApplicationService(state.repo, LOCAL_OPERATOR).delete(app_id)
    state.emit({"id": app_id, "deleted": True}, f"deleted application {app_id}")


# -- subscriptions --------------------------------------------------------------------------
def _sub_line(sub: dict[str, Any]) -> str:
    keys = ",".join(k["key"] for k in sub.get("keys", []) if not k["revoked"])
    return (f"{sub['id']}  {sub['status']:<9} {sub['consumerStatus']:<8} api={sub['api']} "
            f"plan={sub['plan']} app={sub['application']}" + (f" key={keys}" if keys else "")
            + (f" failure={sub['failureCause']}" if sub.get("failureCause") else ""))


@main.group()
def subscriptions() -> None:
    """Manage subscriptions of applications to plans."""


@subscriptions.command("create")
@click.option("--plan", "plan_id", required=True, help="Plan id.")
@click.option("--application", "application_id", required=True, help="Application id.")
@click.option("--configuration", help='JSON or @file, e.g. \'{"entrypointId": "webhook", '
              '"callbackUrl": "http://..."}\'.')
@click.option("--metadata", help="JSON object or @file (visible as #subscription.metadata).")
@click.option("--api-key", help="Use this API key instead of a generated one (api-key plans).")
@pass_state
def subscriptions_create(state: _State, plan_id: str, application_id: str,
                         configuration: str | None, metadata: str | None,
                         api_key: str | None) -> None:
    """Subscribe an application to a published plan (PENDING when validation is manual)."""
    from .services.subscriptions import SubscriptionService
    body = {"configuration": _json_option(configuration, "configuration"),
            "metadata": _json_option(metadata, "metadata")}
    service = SubscriptionService(state.repo, LOCAL_OPERATOR)
    sub = service.create(plan_id=plan_id, application_id=application_id, body=body,
                         api_key=api_key)
    state.emit(sub, lambda s: f"created {_sub_line(s)}")


@subscriptions.command("list")
@click.option("--api", "api_id", help="Only this API's subscriptions.")
@click.option("--status", help="Comma-separated statuses.")
@click.option("--application", "application_id", help="Only this application's.")
@pass_state
def subscriptions_list(state: _State, api_id: str | None, status: str | None,
                       application_id: str | None) -> None:
    """List subscriptions with their status, consumer status and API keys."""
    from .services.subscriptions import SubscriptionService
    statuses = [s for s in status.split(",") if s.strip()] if status else None
    items = SubscriptionService(state.repo, LOCAL_OPERATOR).list(api_id, statuses=statuses,
                                                 application_id=application_id)
    state.emit(items, lambda data: "\n".join(_sub_line(s) for s in data) or "no subscriptions")


@subscriptions.command("get")
@click.argument("sub_id")
@pass_state
def subscriptions_get(state: _State, sub_id: str) -> None:
    """Show a subscription."""
    from .services.subscriptions import SubscriptionService
    state.emit(SubscriptionService(state.repo, LOCAL_OPERATOR).get(sub_id), _sub_line)


@subscriptions.command("process")
@click.argument("sub_id")
@click.option("--accept/--reject", required=True, help="Approve or refuse.")
@click.option("--reason", help="Why (kept in the log).")
@click.option("--api-key", help="Custom API key to issue (api-key plans).")
@pass_state
def subscriptions_process(state: _State, sub_id: str, accept: bool, reason: str | None,
                          api_key: str | None) -> None:
    """Approve or reject a PENDING subscription."""
    from .services.subscriptions import SubscriptionService
    service = SubscriptionService(state.repo, LOCAL_OPERATOR)
    api_id = service.get(sub_id)["api"]
    body: dict[str, Any] = {"accepted": accept, "reason": reason}
    if api_key:
        body["customApiKey"] = api_key
    state.emit(service.process(api_id, sub_id, body), _sub_line)


@subscriptions.command("update")
@click.argument("sub_id")
@click.option("--configuration", help="New configuration, JSON or @file.")
@click.option("--metadata", help="New metadata, JSON or @file.")
@pass_state
def subscriptions_update(state: _State, sub_id: str, configuration: str | None,
                         metadata: str | None) -> None:
    """Replace a subscription's configuration and/or metadata (gateways apply it live)."""
    from .services.subscriptions import SubscriptionService
    body = {}
    if configuration is not None:
        body["configuration"] = _json_option(configuration, "configuration")
    if metadata is not None:
        body["metadata"] = _json_option(metadata, "metadata")
    state.emit(SubscriptionService(state.repo, LOCAL_OPERATOR).update(sub_id, body), _sub_line)


def _sub_status(name: str, status: str, help_text: str) -> None:
    @subscriptions.command(name, help=help_text)
    @click.argument("sub_id")
    @pass_state
    def command(state: _State, sub_id: str) -> None:
        from .services.subscriptions import SubscriptionService
        service = SubscriptionService(state.repo, LOCAL_OPERATOR)
        state.emit(service.change_status(None, sub_id, status),
                   _sub_line)


_sub_status("pause", "PAUSED", "Pause a subscription (no delivery, its API key is refused).")
_sub_status("resume", "RESUMED", "Resume a paused (or failed) subscription.")
_sub_status("close", "CLOSED", "Close a subscription for good (its API keys are revoked).")


@subscriptions.command("consumer-status")
@click.argument("sub_id")
@click.argument("status", type=click.Choice(["STARTED", "STOPPED"], case_sensitive=False))
@pass_state
def subscriptions_consumer_status(state: _State, sub_id: str, status: str) -> None:
    """The consumer's own switch (portal _changeConsumerStatus): STARTED or STOPPED."""
    from .services.subscriptions import SubscriptionService
    service = SubscriptionService(state.repo, LOCAL_OPERATOR)
    state.emit(service.change_consumer_status(sub_id, status),
               _sub_line)


# -- users ----------------------------------------------------------------------------------
@main.group()
def users() -> None:
    """Management API users (HTTP Basic)."""


@users.command("set-password")
@click.argument("username")
@click.option("--role", "roles", multiple=True, type=click.Choice(["ADMIN", "USER"],
              case_sensitive=False), help="Role(s); default: kept, or USER for a new user "
              "(ADMIN for admin).")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin "
              "(else it is prompted for).")
@pass_state
def users_set_password(state: _State, username: str, roles: tuple[str, ...],
                       password_stdin: bool) -> None:
    """Create a user or change its password (never taken on the command line)."""
    from .services.users import UserService
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    user = UserService(state.repo).set_password(username, password, list(roles) or None)
    state.emit(user, f"password set for {user['username']} ({','.join(user['roles'])})")


@users.command("list")
@pass_state
def users_list(state: _State) -> None:
    """List users and their roles."""
    from .services.users import UserService
    items = UserService(state.repo).list()
    state.emit(items, lambda data: "\n".join(f"{u['username']}  {','.join(u['roles'])}"
                                             for u in data) or "no users")


# -- kafka ----------------------------------------------------------------------------------
@main.group()
def kafka() -> None:
    """Kafka connectivity."""


@kafka.command("check")
@click.option("--bootstrap", help="Bootstrap servers (default EVGATE_KAFKA_BOOTSTRAP).")
@click.option("--api", "api_id", help="Use this API's kafka endpoint: its bootstrapServers "
                                      "and security (SASL/SSL) settings.")
@click.option("--timeout", type=float, default=5.0, show_default=True, help="Seconds.")
@pass_state
def kafka_check(state: _State, bootstrap: str | None, api_id: str | None, timeout: float) -> None:
    """Check that the Kafka cluster answers metadata requests."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient
    from .errors import GatewayError
    from .kafka.client_config import common_config
    endpoint_conf: dict[str, Any] = {}
    if api_id:
        endpoint_conf = _kafka_endpoint_configuration(state, api_id)
    if bootstrap:
        endpoint_conf = {**endpoint_conf, "bootstrapServers": bootstrap}
    try:  # the same builder as the gateway's clients: security settings included
        conf = common_config(endpoint_conf, state.config)
    except GatewayError as exc:
        _fail(exc.message)
    if bootstrap:
        conf["bootstrap.servers"] = bootstrap
    servers = conf["bootstrap.servers"]
    admin = AdminClient({**conf, "socket.timeout.ms": int(timeout * 1000),
                         "logger": _QuietKafkaLog()})
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        _fail(f"Kafka at {servers} does not answer: {exc.args[0] if exc.args else exc}")
    brokers = sorted(f"{b.host}:{b.port}" for b in metadata.brokers.values())
    result = {"bootstrap": servers, "brokers": brokers, "topics": len(metadata.topics),
              "clusterId": metadata.cluster_id}
    state.emit(result, f"Kafka at {servers}: {len(brokers)} broker(s) "
                       f"({', '.join(brokers)}), {len(metadata.topics)} topic(s)")


def _kafka_endpoint_configuration(state: _State, api_id: str) -> dict[str, Any]:
    """The effective configuration of the API's first kafka endpoint (deployed, else saved)."""
    from .definition import parse_definition
    from .definition.validate import effective_configuration
    row = state.repo.apis.get(api_id)
    raw = row.get("deployed_definition") or row["definition"]
    for group in parse_definition(raw, check_connectors=False).endpointGroups:
        for endpoint in group.endpoints:
            if endpoint.type in ("kafka", "kafka-advanced"):
                return effective_configuration(group, endpoint)
    _fail(f"API {api_id} has no kafka endpoint")
    return {}


class _QuietKafkaLog:
    """librdkafka's connection-refused chatter is not for the CLI user; the result line is."""

    def log(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return self.log


# -- config and db --------------------------------------------------------------------------
@main.group()
def config() -> None:
    """Show the settings or generate their documentation."""


@config.command("show")
@pass_state
def config_show(state: _State) -> None:
    """Print every setting's current value (secrets masked)."""
    values = state.config.as_dict()
    state.emit(values, lambda data: "\n".join(f"{k} = {v}" for k, v in data.items()))


@config.command("docs")
def config_docs() -> None:
    """Print docs/configuration.md, generated from the settings table."""
    click.echo(render_markdown(), nl=False)


@main.group()
def db() -> None:
    """Repository schema."""


@db.command("upgrade")
@pass_state
def db_upgrade(state: _State) -> None:
    """Create or migrate the repository schema to the newest version (Alembic)."""
    from .repository.database import upgrade
    upgrade(state.config.database_url, state.config.secrets_key)
    state.emit({"status": "ok"}, "database schema is up to date")


@main.group()
def secrets() -> None:
    """Keys of the secrets stored encrypted (EVGATE_SECRETS_KEY)."""


@secrets.command("generate-key")
def secrets_generate_key() -> None:
    """Print a new Fernet key (for EVGATE_SECRETS_KEY)."""
    from .security.sealing import generate_key
    click.echo(generate_key())


@secrets.command("rotate")
@pass_state
def secrets_rotate(state: _State) -> None:
    """Re-encrypt every stored secret with the first key of EVGATE_SECRETS_KEY.

    Rotation: EVGATE_SECRETS_KEY=new,old -> `evgate secrets rotate` -> EVGATE_SECRETS_KEY=new.
    """
    counts = state.repo.rotate_secrets()
    state.emit(counts, lambda data: "re-encrypted: " + ", ".join(
        f"{count} {table}" for table, count in data.items()))


if __name__ == "__main__":  # pragma: no cover
    main()
