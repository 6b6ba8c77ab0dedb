"""The one Jinja environment: the project's templates folder first, then the shipped defaults.

A project overrides a default file by file: a ``migration.sql.j2`` in its templates folder
replaces the shipped one, and every other template still comes from backout. Undefined variables
are errors (``StrictUndefined``), so a template typo never writes an empty header.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backout.errors import TemplateError

if TYPE_CHECKING:
    import jinja2

MIGRATION_TEMPLATE = "migration.sql.j2"


def shipped_templates() -> Path:
    """The default templates: inside the installed package, or the source tree's ``templates/``."""
    packaged = Path(__file__).parent / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "templates"


@cache
def environment(project_templates: Path | None) -> jinja2.Environment:
    import jinja2  # only commands that render pay for importing it

    folders = [str(p) for p in (project_templates, shipped_templates()) if p and p.is_dir()]
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(folders),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # SQL and Markdown, never HTML
    )


def render(name: str, context: Mapping[str, Any], project_templates: Path | None = None) -> str:
    """Render template ``name``; raise :class:`TemplateError` naming what is wrong."""
    import jinja2

    try:
        template = environment(project_templates).get_template(name)
        return template.render(**context)
    except jinja2.TemplateNotFound:
        raise TemplateError(
            f"template {name} not found in {project_templates} or backout's defaults",
            hint="restore it, or delete the override so the default is used",
        ) from None
    except jinja2.UndefinedError as exc:
        raise TemplateError(
            f"template {name}: {exc.message}",
            hint="the template uses a variable backout does not provide",
        ) from None
    except UnicodeDecodeError:
        raise TemplateError(
            f"template {name} in {project_templates} is not UTF-8 text",
            hint="save it as UTF-8, or delete the override so the default is used",
        ) from None
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(
            f"template {exc.filename or name}:{exc.lineno}: {exc.message}"
        ) from None
