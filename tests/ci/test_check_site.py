"""The docs-site check (.ci/check_site.py) on tiny hand-made sites: each defect it exists for is caught."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("check_site", ROOT / ".ci" / "check_site.py")
assert spec and spec.loader
check_site = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_site)

MATHJAX = '<script src="../assets/mathjax/tex-svg-full.js"></script>'
API = """<html><head>{head}</head><body>
<h2 id="sgdsai.core" class="doc doc-heading"><code class="doc-symbol doc-symbol-module"></code>core</h2>
<h3 id="sgdsai.core.scale" class="doc doc-heading"><code class="doc-symbol doc-symbol-function"></code>scale</h3>
<div class="doc-signature highlight"><pre><code>scale(x: float) -&gt; float</code></pre></div>
<p>The scale <span class="arithmatex">\\(\\tilde G = \\min(G/M, 1)\\)</span>, see <a href="../#top">home</a>.</p>
{body}
</body></html>"""


def make_site(
    tmp_path: Path, api_head: str = MATHJAX, api_body: str = "", index: str = ""
) -> tuple[Path, Path]:
    site, src = tmp_path / "site", tmp_path / "src"
    (site / "api").mkdir(parents=True)
    (site / "assets" / "mathjax").mkdir(parents=True)
    (site / "assets" / "mathjax" / "tex-svg-full.js").write_text("")
    (site / "index.html").write_text(f'<html><body><h1 id="top">Home</h1>{index}</body></html>')
    (site / "api" / "index.html").write_text(API.format(head=api_head, body=api_body))
    src.mkdir()
    (src / "core.py").write_text('__all__ = ["scale"]\n')
    (src / "cli.py").write_text('__all__ = ["main"]\n')  # the lab: not required on the API page
    return site, src


def test_a_clean_site_passes(tmp_path):
    site, src = make_site(
        tmp_path, index='<p>Plot:</p><img src="report/a.png"><a href="api/#sgdsai.core.scale">x</a>'
    )
    (site / "report").mkdir()
    (site / "report" / "a.png").write_bytes(b"")
    assert check_site.check(site, src) == []


@pytest.mark.parametrize(
    ("body", "index", "finding"),
    [
        ("<p>uses :math:<code>\\eta</code></p>", "", "reST role printed as text: ':math:'"),
        ("<p>.. note::\n    careful</p>", "", "reST directive"),
        ("<p>raw G = \\frac{a}{b}</p>", "", "LaTeX outside math printed as text: '\\\\frac'"),
        ("<p>Method:\n- one\n- two</p>", "", "a list runs inline"),
        (
            '<h3 id="sgdsai.core.__file__" class="doc doc-heading">f</h3>',
            "",
            "dunder entry sgdsai.core.__file__",
        ),
        ("<p>&lt;function f at 0x7f00aa&gt;</p>", "", "object repr shown"),
        (
            '<h3 id="sgdsai.core.Opt" class="doc doc-heading"><code class="doc-symbol doc-symbol-class"></code></h3>',
            "",
            "class sgdsai.core.Opt has no signature",
        ),
        ("", '<img src="report/missing.png">', "index.html: missing file report/missing.png"),
        ("", '<a href="nowhere/">x</a>', "index.html: broken link nowhere/"),
        ("", '<a href="api/#sgdsai.core.nothing">x</a>', "no #sgdsai.core.nothing on api/index.html"),
        ('<script src="https://cdn.example/mathjax.js"></script>', "", "from another host"),
    ],
)
def test_each_defect_is_reported(tmp_path, body, index, finding):
    site, src = make_site(tmp_path, api_body=body, index=index)
    problems = check_site.check(site, src)
    assert any(finding in p for p in problems), problems


def test_math_without_the_bundled_mathjax_is_reported(tmp_path):
    site, src = make_site(tmp_path, api_head="")
    assert any("does not load the bundled MathJax" in p for p in check_site.check(site, src))


def test_an_undocumented_public_name_is_reported(tmp_path):
    site, src = make_site(tmp_path)
    (src / "core.py").write_text('__all__ = ["scale", "shift"]\n')
    (src / "extra.py").write_text("x = 1\n")
    problems = check_site.check(site, src)
    assert "api/index.html: core.shift (in its __all__) is not documented" in problems
    assert "api/index.html: module sgdsai.extra is not documented" in problems


def test_math_code_and_scripts_are_not_running_text(tmp_path):
    body = "<pre><code>x = r'\\frac'  # :class: in code</code></pre><script>var s = '\\\\sqrt';</script>"
    site, src = make_site(tmp_path, api_body=body)
    assert check_site.check(site, src) == []


def test_main_exits_1_on_problems_and_0_on_a_clean_site(tmp_path):
    site, src = make_site(tmp_path, api_body="<p>:func:<code>f</code></p>")
    assert check_site.main([str(site), "--src", str(src)]) == 1
    site.joinpath("api", "index.html").write_text(API.format(head=MATHJAX, body=""))
    assert check_site.main([str(site), "--src", str(src)]) == 0
    assert check_site.main([str(tmp_path / "nothing"), "--src", str(src)]) == 1
