// MathJax settings for pymdownx.arithmatex (generic mode): typeset only what it marked.
// Loaded before the MathJax bundle, which the docs build copies from the installed `mathjax` package.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex",
  },
  svg: { fontCache: "global" },
};
