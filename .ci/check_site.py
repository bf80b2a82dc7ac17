"""Check the built docs site (`make docs` writes it to site/) as a reader would meet it.

Fails, listing every finding, on:
- reST/Sphinx markup printed literally (`:math:`, `:class:`, `.. note::` ...) or LaTeX outside the
  math that MathJax typesets (a `\\frac` in running text), and a paragraph that swallowed a list;
- a page with math but without the site's own MathJax, or any script or stylesheet from another host;
- on the API page: a dunder entry, an object repr (`<... at 0x...>`), a class or function without
  its signature, or a public name of a core module (its `__all__`) that is not documented;
- an image or a local link (with its #anchor) that does not resolve inside the site.

Usage: python .ci/check_site.py [SITE_DIR] [--src SRC_PACKAGE_DIR]   (stdlib only)
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
LAB_MODULES = {"cli", "demo", "readme"}  # the lab's command line: not on the API page
API_PAGE = "api/index.html"
MATHJAX = "assets/mathjax/tex-svg-full.js"

ROLE = re.compile(r":(?:math|class|func|meth|mod|data|attr|obj|exc|ref|term|doc|py:\w+):")
DIRECTIVE = re.compile(r"(?m)^\s*\.\. [a-z-]+::")
LATEX = re.compile(r"\\(?:[a-zA-Z]{2,}|[{}_|,;!])|\$\$")
DUNDER_ID = re.compile(r"\.__\w+__$")
REPR = re.compile(r"<[^<>\n]* at 0x[0-9a-fA-F]+>")
INLINE_LIST = re.compile(r"\n\s*(?:[-*+]|\d+\.) \S")
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Page(HTMLParser):
    """What one HTML file shows and points to."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.images: list[str] = []
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self.text: list[str] = []  # running text: outside code, math, scripts and styles
        self.all_text: list[str] = []  # every text node, code included
        self.paragraphs: list[str] = []
        self.math = 0
        self.headings: list[tuple[str, str]] = []  # (id, symbol kind) of mkdocstrings headings
        self.signed: set[str] = set()  # heading ids followed by a signature before the next heading
        self._stack: list[str] = []
        self._hidden = 0  # depth inside code, math, script or style
        self._paragraph: list[str] | None = None
        self._heading: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        classes = a.get("class", "").split()
        if "id" in a:
            self.ids.add(a["id"])
        if "name" in a and tag == "a":
            self.ids.add(a["name"])
        if tag == "a" and "href" in a:
            self.links.append(a["href"])
        if tag == "img" and "src" in a:
            self.images.append(a["src"])
        if tag == "script" and "src" in a:
            self.scripts.append(a["src"])
        if tag == "link" and "stylesheet" in a.get("rel", ""):
            self.styles.append(a.get("href", ""))
        if tag.startswith("h") and tag[1:].isdigit() and "doc-heading" in classes and "id" in a:
            self._heading = a["id"]
            self.headings.append((a["id"], ""))
        if tag == "code" and self._heading and self.headings and self.headings[-1][0] == self._heading:
            kinds = [c.removeprefix("doc-symbol-") for c in classes if c.startswith("doc-symbol-")]
            if kinds and not self.headings[-1][1]:
                self.headings[-1] = (self._heading, next((k for k in kinds if k != "heading"), ""))
        if "doc-signature" in classes and self.headings:
            self.signed.add(self.headings[-1][0])
        if tag in VOID:
            return
        hidden = tag in ("code", "pre", "script", "style") or "arithmatex" in classes
        if "arithmatex" in classes:
            self.math += 1
        self._stack.append("hidden" if hidden else tag)
        self._hidden += hidden
        if tag == "p":
            self._paragraph = []

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID or not self._stack:
            return
        top = self._stack.pop()
        self._hidden -= top == "hidden"
        if tag == "p" and self._paragraph is not None:
            self.paragraphs.append("".join(self._paragraph))
            self._paragraph = None
        if tag.startswith("h") and tag[1:].isdigit():
            self._heading = None

    def handle_data(self, data: str) -> None:
        self.all_text.append(data)
        if self._hidden:
            return
        self.text.append(data)
        if self._paragraph is not None:
            self._paragraph.append(data)


def resolve(site: Path, page: Path, url: str) -> tuple[Path | None, str]:
    """The site file a local URL of ``page`` names (None if none), and its fragment."""
    parts = urlsplit(url)
    path = unquote(parts.path)
    target = page if not path else (site / path.lstrip("/") if path.startswith("/") else page.parent / path)
    target = target.resolve()
    if target.is_dir():
        target = target / "index.html"
    return (target if target.is_file() else None), unquote(parts.fragment)


def public_names(src: Path) -> tuple[dict[str, list[str]], set[str]]:
    """Core module name -> its ``__all__`` (top-level modules of the package, the lab's left out), and
    the dotted names of the enums among its classes (an enum has no call signature to show)."""
    names: dict[str, list[str]] = {}
    enums: set[str] = set()
    for path in sorted(src.glob("*.py")):
        if path.stem.startswith("_") or path.stem in LAB_MODULES:
            continue
        exported: list[str] = []
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign) and any(
                getattr(t, "id", None) == "__all__" for t in node.targets
            ):
                exported = list(ast.literal_eval(node.value))
            if isinstance(node, ast.ClassDef) and any("Enum" in ast.unparse(b) for b in node.bases):
                enums.add(f"sgdsai.{path.stem}.{node.name}")
        names[path.stem] = exported
    return names, enums


def check(site: Path, src: Path) -> list[str]:
    if not (site / "index.html").is_file():
        return [f"{site}: no built site (run `make docs` first)"]
    problems: list[str] = []
    pages: dict[Path, Page] = {}
    for path in sorted(site.rglob("*.html")):
        parsed = Page()
        parsed.feed(path.read_text(encoding="utf-8"))
        pages[path.resolve()] = parsed
    for path, page in pages.items():
        name = path.relative_to(site.resolve()).as_posix()
        text = "".join(page.text)
        for pattern, what in (
            (ROLE, "reST role"),
            (DIRECTIVE, "reST directive"),
            (LATEX, "LaTeX outside math"),
        ):
            for match in sorted({m.group(0) for m in pattern.finditer(text)}):
                problems.append(f"{name}: {what} printed as text: {match!r}")
        for paragraph in page.paragraphs:
            if INLINE_LIST.search(paragraph):
                problems.append(f"{name}: a list runs inline (no blank line before it?): {paragraph[:80]!r}")
        for url in page.scripts + page.styles:
            if urlsplit(url).scheme or url.startswith("//"):
                problems.append(f"{name}: loads {url} from another host")
        if page.math and not any(s.endswith(MATHJAX) for s in page.scripts):
            problems.append(f"{name}: has math but does not load the bundled MathJax ({MATHJAX})")
        for url in page.images + page.scripts + page.styles:
            if not urlsplit(url).scheme and not url.startswith("//") and resolve(site, path, url)[0] is None:
                problems.append(f"{name}: missing file {url}")
        for url in page.links:
            parts = urlsplit(url)
            if parts.scheme or url.startswith("//"):
                continue
            target, fragment = resolve(site, path, url)
            if target is None:
                problems.append(f"{name}: broken link {url}")
            elif fragment and target in pages and fragment not in pages[target].ids:
                problems.append(f"{name}: link {url}: no #{fragment} on {target.relative_to(site.resolve())}")
    api = pages.get((site / API_PAGE).resolve())
    if api is None:
        return [*problems, f"{API_PAGE}: missing"]
    for ident in sorted(i for i in api.ids if DUNDER_ID.search(i)):
        problems.append(f"{API_PAGE}: dunder entry {ident}")
    for match in sorted(set(REPR.findall("".join(api.all_text)))):
        problems.append(f"{API_PAGE}: object repr shown: {match}")
    exported_names, enums = public_names(src)
    for ident, kind in api.headings:
        if kind in ("class", "function", "method") and ident not in api.signed and ident not in enums:
            problems.append(f"{API_PAGE}: {kind} {ident} has no signature")
    for module, exported in exported_names.items():
        for name in exported or ["<module>"]:
            candidates = {f"sgdsai.{module}", f"sgdsai.{module}.{name}", f"sgdsai.{name}"}
            if exported and not ({f"sgdsai.{module}.{name}", f"sgdsai.{name}"} & api.ids):
                problems.append(f"{API_PAGE}: {module}.{name} (in its __all__) is not documented")
            elif not exported and not candidates & api.ids:
                problems.append(f"{API_PAGE}: module sgdsai.{module} is not documented")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", nargs="?", type=Path, default=ROOT / "site")
    parser.add_argument("--src", type=Path, default=ROOT / "src" / "sgdsai")
    args = parser.parse_args(argv)
    problems = check(args.site, args.src)
    for problem in problems:
        sys.stderr.write(problem + "\n")
    pages = len(list(args.site.rglob("*.html")))
    sys.stderr.write(f"check_site: {pages} pages, {len(problems)} problems\n")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
