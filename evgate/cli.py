"""The `evgate` command line (click).

Every command goes through the same service layer as the management REST API; output is
human-readable by default and JSON with `--json`; errors exit non-zero with one clear line.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import Any, Callable

import click

from .config import Config, render_markdown
from .errors import ConfigError, ConflictError, DefinitionError, EvgateError, NotFoundError


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
            self._repo = open_repository(self.config.database_url)
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
    items = ApiService(state.repo).list()
    state.emit(items, lambda data: "\n".join(_api_line(a) for a in data) or "no APIs")


@apis.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@pass_state
def apis_import(state: _State, files: tuple[str, ...]) -> None:
    """Store, deploy and start API definitions from JSON FILES (same id: replaced)."""
    from .services.apis import ApiService
    service = ApiService(state.repo)
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
    api = ApiService(state.repo).get(api_id)
    click.echo(json.dumps(api, indent=2, default=str))


def _api_action(name: str, help_text: str) -> None:
    @apis.command(name, help=help_text)
    @click.argument("api_id")
    @pass_state
    def command(state: _State, api_id: str) -> None:
        from .services.apis import ApiService
        service = ApiService(state.repo)
        result = getattr(service, name)(api_id)
        state.emit({"id": api_id, "action": name, "result": result},
                   f"{name}: {api_id}")


_api_action("start", "Start an API (deploys it first if it never was).")
_api_action("stop", "Stop an API: gateways stop serving it within the sync interval.")
_api_action("deploy", "Deploy the saved definition of an API to the gateways.")
_api_action("delete", "Delete an API and its plans.")


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
    upgrade(state.config.database_url)
    state.emit({"status": "ok"}, "database schema is up to date")


if __name__ == "__main__":  # pragma: no cover
    main()
