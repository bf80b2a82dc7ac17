"""A Griffe extension for the API page: a class docstring assigned after the class.

``optimizer.py`` sets ``SGDSaI.__doc__ = r'''...'''`` below the class body. Static analysis does not
see that assignment, and inspecting the package instead loses the attribute docstrings and brings in
every dunder. This extension gives the class the assigned string, so the site reads the source only.
"""

from __future__ import annotations

import ast
import inspect
from typing import Any

import griffe


class ClassDocAssignments(griffe.Extension):
    def on_module_members(self, *, node: Any, mod: griffe.Module, agent: Any, **kwargs: Any) -> None:
        if not isinstance(node, ast.Module):  # inspection reads __doc__ itself
            return
        for stmt in node.body:
            if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1):
                continue
            target, value = stmt.targets[0], stmt.value
            if (
                isinstance(target, ast.Attribute)
                and target.attr == "__doc__"
                and isinstance(target.value, ast.Name)
                and target.value.id in mod.members
                and isinstance(value, ast.Constant)
                and isinstance(value.value, str)
            ):
                obj = mod.members[target.value.id]
                obj.docstring = griffe.Docstring(
                    inspect.cleandoc(value.value),
                    lineno=stmt.lineno,
                    endlineno=stmt.end_lineno,
                    parent=obj,
                    parser=agent.docstring_parser,  # as the visitor's own docstrings: Google style
                    parser_options=agent.docstring_options,
                )
