"""The page being written: its sections, the files it links to, and the templates that turn both into HTML.

Every piece of HTML comes from a Jinja2 template under templates/ with autoescaping on, so a folder name, a
setting or an error message read from disk can never add markup; Python code hands the templates plain data.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

FILES_FOLDER = "report_files"  # pictures the report draws, beside the page
WIDE_TABLE = 9  # columns from which a table is set in smaller type

_TEMPLATES = Environment(loader=PackageLoader("dualanodiff.report", "templates"), autoescape=True,
                         undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def render(template: str, **context: Any) -> Markup:
    """One template filled in with `context` (escaped by the template engine, never by hand)."""
    return Markup(_TEMPLATES.get_template(template).render(**context))


@dataclass(frozen=True)
class Link:
    href: str
    text: str


@dataclass(frozen=True)
class Figure:
    href: str
    caption: str


@dataclass(frozen=True)
class Cell:
    """A table cell; `classes` are CSS classes: num (a figure), best, muted, note, wrap (may break anywhere), error."""

    text: str
    classes: str = ""
    href: str | None = None
    bold: bool = False


@dataclass(frozen=True)
class Table:
    head: list[str]
    rows: list[list[Cell]]
    caption: str = ""

    @property
    def classes(self) -> str:
        return "wide" if len(self.head) >= WIDE_TABLE else ""


@dataclass(frozen=True)
class Section:
    anchor: str
    heading: str
    body: Markup


@dataclass
class Page:
    """Collects sections and warnings; turns paths into links relative to the page."""

    path: Path
    sections: list[Section] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    _names: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def files(self) -> Path:
        return self.path.parent / FILES_FOLDER

    def href(self, target: Path) -> str:
        relative = os.path.relpath(target.resolve(), self.path.parent.resolve())
        return quote(Path(relative).as_posix())

    def link(self, target: Path, text: str) -> Link:
        return Link(self.href(target), text)

    def figure(self, target: Path, caption: str) -> Figure:
        return Figure(self.href(target), caption)

    def unique_name(self, label: str) -> str:
        """A file and anchor name derived from `label`, unique within this page."""
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("._") or "item"
        self._names[base] += 1
        count = self._names[base]
        return base if count == 1 else f"{base}-{count}"

    def add(self, heading: str, template: str, **context: Any) -> None:
        """A section under `heading`, its body rendered from `template`."""
        self.sections.append(Section(self.unique_name("sec-" + heading), heading, render(template, **context)))

    def render(self, title: str, root: str, when: str) -> str:
        return str(render("page.html.j2", title=title, root=root, when=when, sections=self.sections))
