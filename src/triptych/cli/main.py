"""Entry point of the ``triptych`` command.

Only typer is imported at start; every command imports what it needs when it runs, which
keeps ``triptych --help`` fast. Errors are printed by :func:`run` through the one table in
``triptych.errors``: one line with the message and the fix, no traceback unless ``--debug``.
"""

from __future__ import annotations

import sys

import typer

from triptych.cli import (
    automl,
    ci,
    data,
    deploy,
    doctor,
    experiments,
    import_,
    init,
    lineage,
    models,
    monitor,
    pipeline,
    predict,
    quickstart,
    release,
    reproduce,
    runs,
    schedules,
    serve,
    server,
    ui,
)

app = typer.Typer(
    name="triptych",
    help="triptych: data, code and environment under control for every run, model and prediction.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: rich's help renderer costs ~80 ms of start-up
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(experiments.app, name="experiments")
app.add_typer(runs.app, name="runs")
app.add_typer(models.app, name="models")
app.add_typer(data.app, name="data")
app.add_typer(pipeline.app, name="pipeline")
app.add_typer(deploy.app, name="deploy")
app.add_typer(monitor.app, name="monitor")
app.add_typer(import_.app, name="import")
app.command("scheduler")(schedules.scheduler)
app.command("reproduce")(reproduce.reproduce)
app.command("automl")(automl.automl)
app.command("serve")(serve.serve)
app.add_typer(server.app, name="server")
app.command("ui")(ui.ui)
app.command("lineage")(lineage.lineage)
app.command("predict")(predict.predict)
app.command("smoke-test")(release.smoke_test)
app.command("build-image")(release.build_image)
app.command("doctor")(doctor.doctor)
app.command("init")(init.init)
app.command("ci")(ci.ci)
app.command("quickstart")(quickstart.quickstart)


def _version(value: bool) -> None:
    if value:
        from triptych import __version__

        typer.echo(f"triptych {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """triptych: the ML lifecycle in one install."""


@app.command()
def info(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show the resolved settings and where each value came from."""
    from triptych import __version__, config
    from triptych.cli import output
    from triptych.uris import redact

    settings = config.resolve()
    values = settings.as_dict()
    values["tracking_uri"] = redact(values["tracking_uri"])
    if json_out:
        output.print_json(
            {
                "version": __version__,
                "project_root": str(settings.project_root),
                "config_file": str(settings.config_file) if settings.config_file else None,
                "settings": {
                    k: {"value": v, "source": settings.sources[k]} for k, v in values.items()
                },
            }
        )
        return
    from rich.table import Table

    table = Table(title=f"triptych {__version__}", title_justify="left")
    table.add_column("setting", style="bold")
    table.add_column("value")
    table.add_column("from", style="dim")
    for key, value in values.items():
        table.add_row(key, output.escape(str(value)), output.escape(settings.sources[key]))
    console = output.console()
    console.print(table)
    console.print(f"[dim]project root:[/] {settings.project_root}")
    console.print(
        f"[dim]config file:[/] {settings.config_file or '(none: triptych.toml not found)'}"
    )


def run() -> None:
    """Console-script entry: run the app and turn triptych errors into one line + exit code."""
    debug = "--debug" in sys.argv[1:]
    try:
        app()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except Exception as e:
        from triptych.errors import TriptychError, exit_code

        if debug:
            import traceback

            traceback.print_exc()
        from triptych.cli import output

        if isinstance(e, TriptychError):
            output.error(e.message, e.hint)
            sys.exit(exit_code(e))
        output.error(
            f"unexpected {type(e).__name__}: {e}",
            "run again with --debug for the traceback, and report it",
        )
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    run()
