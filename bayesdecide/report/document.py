"""A tiny document model for memos: blocks rendered to Markdown and to self-contained HTML.

A memo is a list of blocks (:class:`Heading`, :class:`Paragraph`, :class:`Bullets`,
:class:`Table`, :class:`Figure`, :class:`Callout`). Inline text may use ``**bold**`` and
``*italic*``; everything else is escaped in HTML. Figures are PNG files: Markdown links them by
relative path, HTML embeds them as base64 so the file stands alone.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2
    anchor: str = ""


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: Sequence[str]
    ordered: bool = False


@dataclass(frozen=True)
class Table:
    header: Sequence[str]
    rows: Sequence[Sequence[Any]]
    align: str = ""  # one of l/r/c per column; default: first left, rest right
    caption: str = ""


@dataclass(frozen=True)
class Figure:
    path: Path  # PNG on disk
    caption: str
    rel: str = ""  # path relative to the memo, for Markdown


@dataclass(frozen=True)
class Callout:
    text: str
    kind: str = "info"  # info, good, bad, warn


Block = Heading | Paragraph | Bullets | Table | Figure | Callout


@dataclass
class Document:
    title: str
    subtitle: str = ""
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> None:
        self.blocks.extend(blocks)


# ---------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------


_TAG = re.compile(r"<(?=[A-Za-z/!?])")


def md_text(x: Any) -> str:
    """Text for Markdown: ``<`` that would open an HTML tag is escaped (``<script>`` ->
    ``&lt;script>``), as the HTML memo escapes it; comparisons such as ``<= 1`` stay."""
    return _TAG.sub("&lt;", str(x))


def _md_cell(x: Any) -> str:
    return md_text(x).replace("|", "\\|").replace("\n", " ")


def to_markdown(doc: Document) -> str:
    """Render ``doc`` as GitHub-flavoured Markdown."""
    out = [f"# {md_text(doc.title)}", ""]
    if doc.subtitle:
        out += [f"*{md_text(doc.subtitle)}*", ""]
    for b in doc.blocks:
        if isinstance(b, Heading):
            out += [f"{'#' * b.level} {md_text(b.text)}", ""]
        elif isinstance(b, Paragraph):
            out += [md_text(b.text), ""]
        elif isinstance(b, Callout):
            out += ["> " + md_text(b.text).replace("\n", "\n> "), ""]
        elif isinstance(b, Bullets):
            for i, item in enumerate(b.items, 1):
                out.append(f"{i}. {md_text(item)}" if b.ordered else f"- {md_text(item)}")
            out.append("")
        elif isinstance(b, Table):
            align = b.align or ("l" + "r" * (len(b.header) - 1))
            sep = {"l": ":---", "r": "---:", "c": ":---:"}
            out.append("| " + " | ".join(_md_cell(h) for h in b.header) + " |")
            out.append("|" + "|".join(sep[a] for a in align) + "|")
            for row in b.rows:
                out.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
            if b.caption:
                out += ["", f"*{md_text(b.caption)}*"]
            out.append("")
        elif isinstance(b, Figure):
            cap = md_text(b.caption)
            out += [f"![{cap}]({b.rel or b.path.name})", "", f"*{cap}*", ""]
    return "\n".join(out).rstrip() + "\n"


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------

_BOLD = re.compile(r"\*\*(.+?)\*\*")
_ITALIC = re.compile(r"(?<![*\w])\*(?!\s)(.+?)(?<!\s)\*(?![*\w])")
_CODE = re.compile(r"`([^`]+)`")


def inline_html(text: str) -> str:
    """Escape ``text`` and turn ``**bold**``, ``*italic*`` and ```code``` into tags."""
    s = html.escape(str(text), quote=False)
    s = _CODE.sub(r"<code>\1</code>", s)
    s = _BOLD.sub(r"<strong>\1</strong>", s)
    s = _ITALIC.sub(r"<em>\1</em>", s)
    return s


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def png_data_uri(path: Path) -> str:
    """``data:image/png;base64,...`` of a PNG file."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def to_html(doc: Document, css: str) -> str:
    """Render ``doc`` as one self-contained HTML page (CSS inline, figures base64-embedded)."""
    body: list[str] = []
    toc: list[str] = []
    for b in doc.blocks:
        if isinstance(b, Heading):
            anchor = b.anchor or _slug(b.text)
            if b.level == 2:
                toc.append(f'<li><a href="#{anchor}">{inline_html(b.text)}</a></li>')
            body.append(f'<h{b.level} id="{anchor}">{inline_html(b.text)}</h{b.level}>')
        elif isinstance(b, Paragraph):
            body.append(f"<p>{inline_html(b.text)}</p>")
        elif isinstance(b, Callout):
            text = "<br>".join(inline_html(line) for line in b.text.split("\n"))
            body.append(f'<div class="callout {b.kind}">{text}</div>')
        elif isinstance(b, Bullets):
            tag = "ol" if b.ordered else "ul"
            items = "".join(f"<li>{inline_html(i)}</li>" for i in b.items)
            body.append(f"<{tag}>{items}</{tag}>")
        elif isinstance(b, Table):
            align = b.align or ("l" + "r" * (len(b.header) - 1))
            cls = {"l": "left", "r": "right", "c": "center"}
            head = "".join(
                f'<th class="{cls[a]}">{inline_html(h)}</th>'
                for h, a in zip(b.header, align, strict=True)
            )
            rows = []
            for row in b.rows:
                cells = "".join(
                    f'<td class="{cls[a]}">{inline_html(c)}</td>'
                    for c, a in zip(row, align, strict=True)
                )
                rows.append(f"<tr>{cells}</tr>")
            cap = f"<caption>{inline_html(b.caption)}</caption>" if b.caption else ""
            body.append(
                f'<div class="table-wrap"><table>{cap}<thead><tr>{head}</tr></thead>'
                f"<tbody>{''.join(rows)}</tbody></table></div>"
            )
        elif isinstance(b, Figure):
            body.append(
                f'<figure><img src="{png_data_uri(b.path)}" alt="{html.escape(b.caption)}">'
                f"<figcaption>{inline_html(b.caption)}</figcaption></figure>"
            )
    nav = f"<nav><strong>Contents</strong><ol>{''.join(toc)}</ol></nav>" if toc else ""
    sub = f'<p class="subtitle">{inline_html(doc.subtitle)}</p>' if doc.subtitle else ""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(doc.title)}</title>\n<style>{css}</style>\n</head>\n<body>\n"
        f"<main>\n<h1>{inline_html(doc.title)}</h1>\n{sub}\n{nav}\n"
        + "\n".join(body)
        + "\n</main>\n</body>\n</html>\n"
    )


__all__ = [
    "Bullets",
    "Callout",
    "Document",
    "Figure",
    "Heading",
    "Paragraph",
    "Table",
    "inline_html",
    "png_data_uri",
    "to_html",
    "to_markdown",
]
