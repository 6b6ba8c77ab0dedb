"""``backout init``: plan the files a repository needs to use backout, then write them.

:func:`plan` is pure: what was detected and the current text of the files it may touch in, a
:class:`Plan` out, one :class:`Change` per file, each ``create``, ``append`` or ``unchanged``.
:func:`write` carries a plan out. A second run plans nothing but ``unchanged``: a file that is
already there is never rewritten (existing text is only ever appended to, never reformatted).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

import yaml

from backout import git
from backout.config import CONFIG_FILE, PYPROJECT
from backout.errors import ConfigError, FileExistsRefusal, RefusedError
from backout.project import files
from backout.project.detection import Detected, detect_project
from backout.project.histories import FoundHistory
from backout.templating import render

POSTMORTEMS_README = "postmortems_readme.md.j2"
GITIGNORE = ".gitignore"


class Action(StrEnum):
    CREATE = "create"
    APPEND = "append"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Change:
    """What happens to one file, relative to the root: its new text (created) or the text
    added at its end (appended), and what that is, in a few words."""

    path: str
    action: Action
    what: str
    text: str = ""


@dataclass(frozen=True)
class Options:
    ci: str | None = None
    """``github`` for a GitHub Actions workflow; ``None`` for none."""
    pre_commit: bool = False
    branch: str = "main"
    """The main branch, which the workflow runs on."""
    review_window_hours: int = 72


@dataclass(frozen=True)
class Plan:
    detected: Detected
    histories: tuple[FoundHistory, ...] | None
    """``None`` when no database was looked at."""
    changes: tuple[Change, ...] = field(default=())

    @property
    def to_write(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.action is not Action.UNCHANGED)


def paths_read(detected: Detected) -> tuple[str, ...]:
    """The files :func:`plan` needs the current text of."""
    readme = f"{detected.postmortems}/README.md"
    return (PYPROJECT, CONFIG_FILE, GITIGNORE, readme, files.WORKFLOW, files.PRE_COMMIT)


def plan(
    detected: Detected,
    histories: tuple[FoundHistory, ...] | None,
    current: Mapping[str, str | None],
    options: Options,
) -> Plan:
    """The changes that set the project up; ``current`` holds the text of each file of
    :func:`paths_read` (``None``: no such file)."""
    changes = [
        _config(detected, histories or (), current),
        _gitignore(current.get(GITIGNORE)),
        _postmortems_readme(detected, current, options),
    ]
    if options.ci == "github":
        changes.append(_workflow(current.get(files.WORKFLOW), options.branch))
    if options.pre_commit:
        folders = [f.path for f in detected.folders]
        changes.append(_pre_commit(current.get(files.PRE_COMMIT), folders))
    return Plan(detected, histories, tuple(changes))


def _config(
    detected: Detected, histories: Sequence[FoundHistory], current: Mapping[str, str | None]
) -> Change:
    if detected.config_file is not None:
        name = detected.config_file.name
        return Change(name, Action.UNCHANGED, "already holds backout's settings")
    pyproject = current.get(PYPROJECT)
    if pyproject is None:
        text = files.config_table(detected, histories, pyproject=False)
        return Change(CONFIG_FILE, Action.CREATE, "backout's settings", text)
    added = files.config_table(detected, histories, pyproject=True)
    separator = "\n" if pyproject.endswith("\n") or not pyproject else "\n\n"
    added = separator + added if pyproject else added
    try:
        tomllib.loads(pyproject + added)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"adding [tool.backout] would make it invalid TOML ({exc})",
            path=detected.root / PYPROJECT,
            hint="add the table by hand (see the README's Configuration), or write backout.toml",
        ) from None
    return Change(PYPROJECT, Action.APPEND, "[tool.backout]", added)


def _gitignore(current: str | None) -> Change:
    if current is not None and files.ignores_backups(current):
        return Change(GITIGNORE, Action.UNCHANGED, f"already ignores {files.BACKUPS_IGNORE}")
    if current is None:
        return Change(GITIGNORE, Action.CREATE, files.BACKUPS_IGNORE, files.gitignore_lines())
    separator = "" if not current or current.endswith("\n") else "\n"
    return Change(
        GITIGNORE, Action.APPEND, files.BACKUPS_IGNORE, separator + files.gitignore_lines()
    )


def _postmortems_readme(
    detected: Detected, current: Mapping[str, str | None], options: Options
) -> Change:
    path = f"{detected.postmortems}/README.md"
    if current.get(path) is not None:
        return Change(path, Action.UNCHANGED, "already there")
    text = render(POSTMORTEMS_README, {"review_window_hours": options.review_window_hours})
    return Change(path, Action.CREATE, "how postmortems are written", text)


def _workflow(current: str | None, branch: str) -> Change:
    if current is not None:
        return Change(files.WORKFLOW, Action.UNCHANGED, "already there (left as it is)")
    text = files.github_workflow(branch)
    return Change(files.WORKFLOW, Action.CREATE, "lint, guard, verify, status, postmortems", text)


def _pre_commit(current: str | None, folders: Sequence[str]) -> Change:
    if current is None:
        text = files.pre_commit_config(folders)
        return Change(files.PRE_COMMIT, Action.CREATE, "backout-lint, backout-guard", text)
    indent = _repos_indent(current)
    if indent is None:
        return Change(files.PRE_COMMIT, Action.UNCHANGED, "already runs backout's hooks")
    separator = "" if not current or current.endswith("\n") else "\n"
    added = separator + files.pre_commit_hooks(folders, indent)
    return Change(files.PRE_COMMIT, Action.APPEND, "backout-lint, backout-guard", added)


def _repos_indent(text: str) -> int | None:
    """The column of the ``-`` of the ``repos:`` list, which must end the file so that an
    entry can be appended; ``None`` when backout's hooks are already there."""
    hint = "add backout's hooks by hand (see the README: pre-commit)"
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{files.PRE_COMMIT} is not valid YAML: {exc}", hint=hint) from None
    repos = data.get("repos") if isinstance(data, dict) else None
    hooks = [h for r in repos or [] if isinstance(r, dict) for h in r.get("hooks") or []]
    if any(isinstance(h, dict) and h.get("id") in files.HOOK_IDS for h in hooks):
        return None
    values = {k.value: v for k, v in node.value} if isinstance(node, yaml.MappingNode) else {}
    listed: yaml.Node | None = values.get("repos")
    last = node.value[-1][1] if isinstance(node, yaml.MappingNode) and node.value else None
    if not isinstance(listed, yaml.SequenceNode) or listed.flow_style or listed is not last:
        raise RefusedError(
            f"{files.PRE_COMMIT}: backout appends its hooks to a block list `repos:` that ends "
            "the file, and this one does not",
            hint=hint,
        )
    items: list[yaml.Node] = getattr(listed, "value", None) or []
    if not items:
        return 2
    line = text.splitlines()[items[0].start_mark.line]
    return len(line) - len(line.lstrip())


def write(root: Path, changes: Sequence[Change]) -> None:
    """Carry out ``changes`` under ``root``: create files (never over an existing one),
    append to others."""
    for change in changes:
        path = root / change.path
        if change.action is Action.CREATE:
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                with path.open("x", encoding="utf-8") as handle:
                    handle.write(change.text)
            except FileExistsError:  # written since the plan was made
                raise FileExistsRefusal(path, hint="run backout init again") from None
        elif change.action is Action.APPEND:
            with path.open("a", encoding="utf-8") as handle:
                handle.write(change.text)


def read_current(root: Path, paths: Sequence[str]) -> dict[str, str | None]:
    """The text of each of ``paths`` under ``root``; ``None`` for a missing file."""
    return {
        p: (root / p).read_text(encoding="utf-8") if (root / p).is_file() else None for p in paths
    }


def prepare(cwd: Path, *, database_url: str | None, options: Options) -> Plan:
    """Detect what the repository holding ``cwd`` has (its top level, else ``cwd`` itself),
    look for history tables at ``database_url`` when one is given, and plan."""
    detected = detect_project(git.top_level(cwd) or cwd)
    histories = None
    if database_url:
        from backout.project.histories import find_histories

        histories = find_histories(database_url, detected.settings(), detected.folders)
    branch = git.first_commit_of(detected.root, ("main", "master")) or "main"
    window = detected.settings().review_window_hours
    current = read_current(detected.root, paths_read(detected))
    chosen = replace(options, branch=branch, review_window_hours=window)
    return plan(detected, histories, current, chosen)
