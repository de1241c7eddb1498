"""The ``retain`` command: a thin layer over features/, models/, training/ and serving/."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

# The API scores a few customers per request: polars' thread pool costs more than it saves on
# such small frames (one-customer p50 42 -> 30 ms), and parallelism comes from requests instead.
# polars reads this once, at import, so it is set before anything imports it.
if sys.argv[1:2] == ["serve"]:
    os.environ.setdefault("POLARS_MAX_THREADS", "1")
# A batch of features fills a fresh process's memory once: on 4 KiB pages that is ~100k page
# faults per 2M lines (0.45 s of system time of ~3 s); polars' allocator (jemalloc) asks for
# transparent huge pages instead (a third of the faults, ~0.1 s less system time, ~50 MB more
# peak). Read by jemalloc when polars loads, so set before that; a value given wins.
if sys.argv[1:2] == ["features"]:
    os.environ.setdefault("_RJEM_MALLOC_CONF", "thp:always,metadata_thp:always")

from typing import Annotated, Any

import typer
from typer import _click
from typer.core import TyperGroup

from retain import errors
from retain.commands import cohorts, data, decisions, inspect, monitoring, serving, training
from retain.commands import effect as effect_commands

DEBUG_KEY = "retain.debug"


def _passing_through() -> tuple[type[BaseException], ...]:
    """Typer's own ways to end a command (typer.Exit, typer.Abort, and its vendored Click's
    exceptions, usage errors among them, which exit 2): they already print what they mean."""
    from typer.exceptions import TyperException

    kinds: list[type[BaseException]] = [typer.Exit, typer.Abort, TyperException, SystemExit,
                                         _click.exceptions.ClickException]
    # A stand-alone Click, should a library raise its exceptions: one that raises them has
    # imported it already, and importing it here would cost every `--help` (which ends in
    # Typer's Exit) 0.15 s.
    click = sys.modules.get("click")
    if click is not None:
        kinds += [click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort]
    return tuple(kinds)


class RetainGroup(TyperGroup):
    """Runs every command so that it ends in one line, never a traceback (see retain.errors)."""

    def parse_args(self, ctx: _click.Context, args: list[str]) -> list[str]:
        _plain_values(self.get_params(ctx))
        return super().parse_args(ctx, args)

    def resolve_command(self, ctx: _click.Context,
                        args: list[str]) -> tuple[str | None, _click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None:
            _plain_values(command.get_params(ctx))  # its help option too
        return name, command, rest

    def invoke(self, ctx: _click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _passing_through():
            raise
        except KeyboardInterrupt:
            _print_line("interrupted")
            raise typer.Exit(errors.EXIT_INTERRUPTED) from None
        except BaseException as exc:
            if not isinstance(exc, Exception | MemoryError):
                raise
            command = ctx.invoked_subcommand or "retain"
            exc = errors.translate(exc)
            debug = ctx.meta.get(DEBUG_KEY, False) or errors.debug_requested()
            if isinstance(exc, errors.known_error_types()):
                if debug:
                    _print_raw(errors.format_traceback(exc))
                _print_line(f"error: {errors.describe(exc)}", red="error:")
                raise typer.Exit(errors.EXIT_ERROR) from None
            if debug:
                _print_raw(errors.format_traceback(exc))
                log_file = None
                _print_line(f"internal error in `retain {command}`: {type(exc).__name__} "
                            "(traceback above)", red="internal error")
            else:
                log_file = errors.write_traceback(exc, command)
                _print_line(errors.internal_error_message(exc, command, log_file),
                            red="internal error")
            raise typer.Exit(errors.EXIT_INTERNAL) from None


def _plain_values(params: list[_click.Parameter]) -> None:
    """Typer checks every option's value, given or not, with a pydantic TypeAdapter it builds
    on first use: importing pydantic and building the adapters costs every command ~0.15 s
    before it starts (`retain features` on 2M lines takes ~1.5 s in all). The values a command
    line gives are mostly plain (a text, a path, a whole number in range, one of the choices,
    a flag), and what pydantic makes of them is known; each option reads those directly and
    hands any other value to Typer's own adapter, so every error message stays Typer's."""
    try:
        from typer._coercion import RuntimeParam, build_runtime_param
    except ImportError:  # another Typer: it checks as it likes, only slower
        return
    global _PlainParam  # the class needs Typer's base, imported here
    if _PlainParam is None:
        _PlainParam = _plain_param_class(RuntimeParam, build_runtime_param)
    for param in params:
        descriptor = getattr(param, "type_descriptor", None)
        if (descriptor is None or descriptor.file_annotation is not None
                or getattr(param, "_runtime_param", False) is not None):
            continue
        param._runtime_param = _PlainParam(  # type: ignore[attr-defined]
            annotation=descriptor.annotation, parameter_info=descriptor.parameter_info)


_PlainParam: Any = None
_NOT_PLAIN = object()
_WHOLE = re.compile(r"0|[1-9][0-9]{0,17}")
_DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]{0,14})(?:\.[0-9]{1,15})?")


def _plain_param_class(base: Any, build_runtime_param: Any) -> Any:
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class PlainParam(base):  # type: ignore[misc,valid-type]
        def _coerce_value(self, value: Any, param: Any, ctx: _click.Context) -> Any:
            if value == "" and param.name == "out":
                # An empty path reads as "." (the directory): no file name to write to.
                raise _click.exceptions.BadParameter(
                    "an empty path; name the file (or directory) to write", ctx=ctx, param=param)
            try:
                plain = _plain_value(self.annotation, self.parameter_info, value, param, ctx)
            except ValueError:  # e.g. a NUL in a path: Typer's adapter words the error
                plain = _NOT_PLAIN
            if plain is not _NOT_PLAIN:
                return plain
            return build_runtime_param(param.type_descriptor)._coerce_value(
                value, param=param, ctx=ctx)

    return PlainParam


def _plain_value(annotation: Any, info: Any, value: Any, param: Any, ctx: _click.Context) -> Any:
    """What Typer's adapter makes of ``value`` when that is certain, else ``_NOT_PLAIN``."""
    from typing import Literal, get_args, get_origin

    if getattr(info, "parser", None) is not None or getattr(info, "click_type", None) is not None:
        return _NOT_PLAIN
    if annotation is str or annotation is bool:
        return value if type(value) is annotation else _NOT_PLAIN
    if get_origin(annotation) is list and get_args(annotation) == (str,):
        if isinstance(value, list | tuple) and all(type(v) is str for v in value):
            return list(value)
        return _NOT_PLAIN
    if get_origin(annotation) is Literal:
        choices = get_args(annotation)
        if (type(value) is str and value in choices and info.case_sensitive
                and all(type(c) is str for c in choices) and ctx.token_normalize_func is None):
            return value
        return _NOT_PLAIN
    if annotation is int or annotation is float:
        if info.clamp:
            return _NOT_PLAIN
        text = type(value) is str and (_WHOLE if annotation is int else _DECIMAL).fullmatch(value)
        if not (text or type(value) is annotation or (annotation is float and type(value) is int)):
            return _NOT_PLAIN
        number = annotation(value)
        if ((info.min is not None and not number >= info.min)
                or (info.max is not None and not number <= info.max)):
            return _NOT_PLAIN  # out of range: the adapter says so
        return number
    if (isinstance(annotation, type) and issubclass(annotation, Path)
            and info.path_type is None and not info.allow_dash):
        from typer._param_types import coerce_cli_path

        if type(value) is str and value and "\x00" not in value:
            value = annotation(value)
        if not isinstance(value, annotation):
            return _NOT_PLAIN
        # Typer's own checks (exists, readable, ...), as its adapter runs them.
        return coerce_cli_path(value, info, path_type=annotation, param=param, ctx=ctx)
    return _NOT_PLAIN


def _print_line(text: str, red: str = "") -> None:
    from rich.markup import escape

    from retain.progress import console

    body = escape(text)
    if red and body.startswith(red):
        body = f"[red]{red}[/]{body[len(red):]}"
    # soft_wrap: one logical line however narrow the terminal.
    console.print(body, soft_wrap=True)


def _print_raw(text: str) -> None:
    from retain.progress import console

    console.print(text, markup=False, highlight=False, soft_wrap=True, end="")


class RetainTyper(typer.Typer):
    """The `retain` command line. A command that says its work is saved (retain.progress.
    work_saved) ends the process at once when it succeeds: what is printed is flushed, and the
    interpreter's clean-up is skipped."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        kept = _build_only(self, sys.argv[1:]) if not args and "args" not in kwargs else None
        try:
            return super().__call__(*args, **kwargs)
        except SystemExit as exc:
            from retain.progress import may_exit_at_once

            if exc.code in (0, None) and may_exit_at_once():
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                except (OSError, ValueError):  # a closed pipe: let Python end as it does
                    raise exc from None
                os._exit(0)
            raise
        finally:
            if kept is not None:
                for typer_app, commands in kept:
                    typer_app.registered_commands = commands


def _build_only(app: typer.Typer, args: list[str]) -> list[tuple[typer.Typer, list]] | None:
    """Typer builds every command (their options, types and help texts: ~0.05-0.1 s) before
    it runs one. When the first word after the group's flags names a command, only that one
    is built; the commands each app had are returned to put back. None (build all) for
    anything else: help, a misspelt name (Click suggests the right one), sub-groups."""
    name = next((arg for arg in args if not arg.startswith("-")), None)
    apps = [app, *(group.typer_instance for group in app.registered_groups)]
    if name is None or any(group.name for group in app.registered_groups) or None in apps:
        return None
    kept, found = [], False
    for typer_app in apps:
        assert typer_app is not None
        commands = typer_app.registered_commands
        only = [command for command in commands if _command_name(command) == name]
        found = found or bool(only)
        kept.append((typer_app, commands))
        typer_app.registered_commands = only
    if not found:
        for typer_app, commands in kept:
            typer_app.registered_commands = commands
        return None
    return kept


def _command_name(command: Any) -> str | None:
    if command.name:
        return command.name
    callback = command.callback
    return None if callback is None else callback.__name__.lower().replace("_", "-")


app = RetainTyper(
    name="retain",
    help="Churn, value and repurchase-timing predictions for retention marketing.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=RetainGroup,
    # Click's own help layout: it wraps every option's text to the terminal (at most 80
    # columns) and never cuts a name or a value with "…", as Rich's option tables do at 80
    # columns; and it needs no Rich import, so help is instant.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def version_text() -> str:
    """retain's installed version (the package metadata), with Python's and the platform's."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("retain")
    except PackageNotFoundError:  # run from a checkout that is not installed
        from retain import __version__ as found
    return (f"retain {found} (Python {platform.python_version()}, "
            f"{platform.system()} {platform.machine()})")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(version_text())
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    debug: Annotated[
        bool,
        typer.Option("--debug", help="On an unexpected error print the traceback instead of "
                     "writing it to a log file. Env: RETAIN_DEBUG=1."),
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_print_version, is_eager=True,
                     help="Print retain's version (and Python's, the platform's) and exit."),
    ] = False,
) -> None:
    """Churn, value and repurchase-timing predictions for retention marketing."""
    from retain.features.redaction import install_log_masking

    ctx.meta[DEBUG_KEY] = debug
    install_log_masking()


app.add_typer(data.app)
app.add_typer(inspect.app)
app.add_typer(training.app)
app.add_typer(decisions.app)
app.add_typer(monitoring.app)  # retain drift, retain calibration
app.add_typer(cohorts.app)
app.add_typer(serving.app)
app.add_typer(effect_commands.app)
