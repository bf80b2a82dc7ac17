"""MkDocs hooks: generated content from the repository, and the bundled MathJax.

A page includes a generated block of another Markdown file of the repository with a line

    <!-- include: README.md#bench shift=1 -->

which inserts the lines between ``<!-- bench:begin -->`` and ``<!-- bench:end -->`` of ``README.md``
(without ``#BLOCK``: the whole file), its headings lowered by ``shift`` levels. Links in the included
text are relative to the included file; they are rewritten relative to the page, and every repository
file they point to outside ``docs/`` (plots, records) is copied into the site at its repository path.
A link to a file that does not exist is left as it is, so the strict build reports it.

The MathJax bundle comes from the installed ``mathjax`` package (PyPI ``django-static-mathjax``,
MathJax 3.2.2 files only, no Django); the site loads it from its own ``assets/``, never from a CDN.
"""

from __future__ import annotations

import importlib.util
import posixpath
import re
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

MATHJAX_BUNDLE = "es5/tex-svg-full.js"  # every TeX extension in one file: nothing loaded lazily
MATHJAX_URI = "assets/mathjax/tex-svg-full.js"  # where mkdocs.yml's extra_javascript expects it

INCLUDE = re.compile(
    r"^<!-- include: (?P<path>[^#\s]+)(?:#(?P<block>[\w-]+))?(?: shift=(?P<shift>\d))? -->$", re.M
)
LINK = re.compile(r"(?P<head>!?\[[^\]]*\]\()(?P<target>[^)\s]+)(?P<tail>\))")
HEADING = re.compile(r"^(#{1,6}) ", re.M)
FENCE = re.compile(r"^(```|~~~)", re.M)


def repo_root(config: MkDocsConfig) -> Path:
    return Path(config.config_file_path).parent


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def block(text: str, name: str | None, where: str) -> str:
    """The lines between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->`` (all of ``text`` without a name)."""
    if name is None:
        return text
    match = re.search(rf"<!-- {name}:begin -->\n(.*?)<!-- {name}:end -->", text, re.S)
    if match is None:
        raise PluginError(f"{where}: no block '<!-- {name}:begin -->' ... '<!-- {name}:end -->'")
    return match.group(1)


def _shift(text: str, levels: int) -> str:
    if not levels:
        return text
    parts = FENCE.split(text)  # [text, fence, code..., fence, text, ...]: headings only outside fences
    out, inside = [], False
    for part in parts:
        if part in ("```", "~~~"):
            inside = not inside
            out.append(part)
        else:
            out.append(
                part if inside else HEADING.sub(lambda m: "#" * min(len(m[1]) + levels, 6) + " ", part)
            )
    return "".join(out)


def expand(markdown: str, page_uri: str, root: Path) -> tuple[str, set[str]]:
    """Replace every include line of the page at ``page_uri`` (relative to ``docs/``); also return the
    repository paths (outside ``docs/``) that the included text links to and that exist."""
    wanted: set[str] = set()
    page_dir = posixpath.dirname(page_uri)

    def include(match: re.Match[str]) -> str:
        source = root / match["path"]
        where = f"{page_uri}: include {match['path']}"
        if not source.is_file():
            raise PluginError(f"{where}: no such file")
        text = _shift(block(_read(source), match["block"], where), int(match["shift"] or 0))
        source_dir = source.parent.relative_to(root).as_posix()

        def relink(link: re.Match[str]) -> str:
            target = link["target"]
            if re.match(r"^[a-z][a-z0-9+.-]*:|^#|^/", target):  # a URL, an anchor, an absolute path
                return link[0]
            path, _, anchor = target.partition("#")
            repo_path = posixpath.normpath(posixpath.join(source_dir, path))
            if repo_path.startswith("docs/"):
                site_uri = repo_path.removeprefix("docs/")
            else:
                site_uri = repo_path
                if (root / repo_path).is_file():
                    wanted.add(repo_path)
            new = posixpath.relpath(site_uri, page_dir or ".") + (f"#{anchor}" if anchor else "")
            return f"{link['head']}{new}{link['tail']}"

        return LINK.sub(relink, text).rstrip("\n")

    return INCLUDE.sub(include, markdown), wanted


def on_files(files: Files, config: MkDocsConfig) -> Files:
    root = repo_root(config)
    spec = importlib.util.find_spec("mathjax")
    bundle = (
        Path(spec.origin).parent / "static" / "mathjax" / MATHJAX_BUNDLE if spec and spec.origin else None
    )
    if bundle is None or not bundle.is_file():
        raise PluginError("MathJax not found: install the docs extra (pip install -e '.[docs]')")
    files.append(File.generated(config, MATHJAX_URI, abs_src_path=str(bundle)))
    wanted: set[str] = set()
    for file in files.documentation_pages():
        wanted |= expand(_read(Path(file.abs_src_path)), file.src_uri, root)[1]
    for repo_path in sorted(wanted):
        if files.get_file_from_path(repo_path) is None:
            files.append(File.generated(config, repo_path, abs_src_path=str(root / repo_path)))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    return expand(markdown, page.file.src_uri, repo_root(config))[0]
