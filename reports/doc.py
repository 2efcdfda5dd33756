"""A report as a list of blocks, rendered to Markdown (images as files beside it) or one self-contained HTML
file (images as ``data:`` URIs, no script, no network)."""

from __future__ import annotations

import base64
import html
import os
import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Heading:
    level: int
    text: str
    anchor: str = ""


@dataclass
class Para:
    text: str  # plain text; `code` spans and [label](#anchor-or-path) links are rendered in both formats


@dataclass
class Table:
    heads: list[str]
    rows: list[list[str]]  # cells: plain text with the same inline syntax as Para
    classes: list[str] = field(default_factory=list)  # per row: "", "met", "missed"


@dataclass
class Image:
    path: Path  # a PNG written by the report
    alt: str


@dataclass
class Details:
    """Preformatted text (a post-mortem) embedded in the HTML; Markdown links to its ``source`` file instead."""

    title: str
    text: str
    anchor: str = ""
    source: Path | None = None


Block = Heading | Para | Table | Image | Details

_LINK = re.compile(r"\[([^\]]+)\]\(([^)]+)\)")
_CODE = re.compile(r"`([^`]+)`")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _inline_html(text: str) -> str:
    out, pos = [], 0
    for m in _LINK.finditer(text):
        out.append(_code_html(text[pos:m.start()]))
        out.append(f'<a href="{html.escape(m.group(2), quote=True)}">{_code_html(m.group(1))}</a>')
        pos = m.end()
    out.append(_code_html(text[pos:]))
    return "".join(out)


def _code_html(text: str) -> str:
    parts = _CODE.split(text)
    return "".join(f"<code>{html.escape(p)}</code>" if i % 2 else html.escape(p) for i, p in enumerate(parts))


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: list[Block], md_path: Path) -> str:
    """Markdown; images linked relative to ``md_path``; Details become links to their own files when anchors."""
    files = {f"](#{b.anchor})": f"]({os.path.relpath(b.source, md_path.parent).replace(os.sep, '/')})"
             for b in blocks if isinstance(b, Details) and b.anchor and b.source is not None}

    def link(text: str) -> str:  # an anchor of an embedded file becomes a link to the file itself
        for a, f in files.items():
            text = text.replace(a, f)
        return text

    lines: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            lines += ["#" * b.level + " " + b.text, ""]
        elif isinstance(b, Para):
            lines += [link(b.text), ""]
        elif isinstance(b, Table):
            lines.append("| " + " | ".join(_md_cell(h) for h in b.heads) + " |")
            lines.append("|" + "---|" * len(b.heads))
            lines += ["| " + " | ".join(link(_md_cell(c)) for c in row) + " |" for row in b.rows]
            lines.append("")
        elif isinstance(b, Image):
            rel = os.path.relpath(b.path, md_path.parent).replace(os.sep, "/")
            lines += [f"![{b.alt}]({rel})", ""]
        elif isinstance(b, Details):
            continue  # the Markdown report links the post-mortem files themselves
    return "\n".join(lines).rstrip() + "\n"


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;
padding:0 1rem;color:#1d1d1f;line-height:1.45}
h1{border-bottom:2px solid #ddd;padding-bottom:.3rem}h2{margin-top:2.2rem;border-bottom:1px solid #eee}
table{border-collapse:collapse;margin:.6rem 0 1.2rem;font-size:.88rem}
th,td{border:1px solid #d0d0d0;padding:.25rem .55rem;text-align:left;vertical-align:top}
th{background:#f4f4f6}tr.met td:first-child{border-left:4px solid #2e7d32}
tr.missed td:first-child{border-left:4px solid #c62828}
img{max-width:100%;height:auto;border:1px solid #eee;margin:.4rem 0 1rem}
code{background:#f4f4f6;padding:0 .2rem;border-radius:3px}
details{margin:.3rem 0}details pre{background:#fafafa;border:1px solid #eee;padding:.6rem;overflow-x:auto;
white-space:pre-wrap;font-size:.8rem}
nav ul{columns:3}
"""


def to_html(blocks: list[Block], title: str) -> str:
    """One HTML document: inline CSS, PNGs embedded as base64 data URIs, no script."""
    body: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            anchor = f' id="{html.escape(b.anchor or slug(b.text), quote=True)}"'
            body.append(f"<h{b.level}{anchor}>{_inline_html(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            body.append(f"<p>{_inline_html(b.text)}</p>")
        elif isinstance(b, Table):
            rows = ["<tr>" + "".join(f"<th>{_inline_html(h)}</th>" for h in b.heads) + "</tr>"]
            for i, row in enumerate(b.rows):
                cls = b.classes[i] if i < len(b.classes) and b.classes[i] else ""
                attr = f' class="{cls}"' if cls else ""
                rows.append(f"<tr{attr}>" + "".join(f"<td>{_inline_html(c)}</td>" for c in row) + "</tr>")
            body.append("<table>\n<thead>" + rows[0] + "</thead>\n<tbody>\n" + "\n".join(rows[1:])
                        + "\n</tbody>\n</table>")
        elif isinstance(b, Image):
            data = base64.b64encode(b.path.read_bytes()).decode("ascii")
            body.append(f'<img alt="{html.escape(b.alt, quote=True)}" src="data:image/png;base64,{data}"/>')
        elif isinstance(b, Details):
            anchor = f' id="{html.escape(b.anchor, quote=True)}"' if b.anchor else ""
            body.append(f"<details{anchor}><summary>{html.escape(b.title)}</summary>"
                        f"<pre>{html.escape(b.text)}</pre></details>")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n"
            f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")
