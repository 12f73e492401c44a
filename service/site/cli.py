"""``flask site build``: render ``SITE_RESUME`` into ``build/site`` with the app's settings."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from ..core.config import project_path

site_cli = AppGroup("site", help="Build the static site from resume.json.")


@site_cli.command("build")
@click.option("--resume", "resume_path", type=click.Path(dir_okay=False),
              help="The resume to render (default: SITE_RESUME, site/resume.json).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="The folder to write (replaced as a whole; default: SITE_DIR, build/site).")
@with_appcontext
def build_command(resume_path: str | None, out_dir: str | None):
    """Validate resume.json and its translations and render the static site (pages, assets, robots.txt, the
    resume's PDFs)."""
    from ..theme.templates import WIDGETS_KEY
    from .build import PdfUnavailable, ResumeError, SiteOptions, build
    config = current_app.config
    resume_path = resume_path or project_path(config["SITE_RESUME"])
    out_dir = out_dir or project_path(config["SITE_DIR"])
    try:
        report = build(resume_path, out_dir, SiteOptions.from_config(config, current_app.extensions[WIDGETS_KEY]))
    except (ResumeError, PdfUnavailable) as exc:
        raise click.ClickException(str(exc)) from None
    for note in report.notes:
        click.echo(note, err=True)
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    languages = ", ".join(f"{tag} ({page})" for tag, page in report.pages)
    click.echo(f"built {len(report.files)} files into {report.out_dir} "
               f"(home page with its assets: {report.home_bytes / 1024:.1f} KB before compression; "
               f"resume pages: {languages})", err=True)
