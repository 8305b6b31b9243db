"""What Python code reads and binds, read from its syntax tree (nothing is run).

The notebook converter's view of names: which a statement reads from outside, which it binds
in its own scope, and identifiers made from free text.
"""

from __future__ import annotations

import ast
import keyword
import re


def loads(node: ast.AST) -> set[str]:
    """Names read anywhere in ``node`` that it does not bind locally (comprehension variables,
    lambda and function arguments)."""
    loaded = {
        n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
    }
    local: set[str] = set()
    for n in ast.walk(node):
        if isinstance(n, ast.comprehension):
            local |= {t.id for t in ast.walk(n.target) if isinstance(t, ast.Name)}
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            a = n.args
            local |= {x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs]}
            local |= {x.arg for x in (a.vararg, a.kwarg) if x is not None}
            if not isinstance(n, ast.Lambda):
                local |= bound_inside(n)
    loaded |= {  # `x += 1` reads x
        n.target.id
        for n in ast.walk(node)
        if isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name)
    }
    return loaded - local


def free_reads(stmts: list[ast.stmt], bound: set[str]) -> list[str]:
    """The names ``stmts`` read before they bind them, in order, following the statements
    inside loops, ``with`` and ``try`` blocks (a ``for`` target is bound for its body).
    ``bound`` (the names bound before) grows with what the statements bind."""
    found: list[str] = []

    def note(names: set[str]) -> None:
        found.extend(n for n in sorted(names) if n not in bound and n not in found)

    def walk(block: list[ast.stmt]) -> None:
        for stmt in block:
            if isinstance(stmt, (ast.For, ast.AsyncFor)):
                note(loads(stmt.iter))
                bound.update(bound_by(stmt.target))
                walk(stmt.body)
                walk(stmt.orelse)
            elif isinstance(stmt, (ast.While, ast.If)):
                note(loads(stmt.test))
                walk(stmt.body)
                walk(stmt.orelse)
            elif isinstance(stmt, (ast.With, ast.AsyncWith)):
                for item in stmt.items:
                    note(loads(item.context_expr))
                    if item.optional_vars is not None:
                        bound.update(bound_by(item.optional_vars))
                walk(stmt.body)
            elif isinstance(stmt, ast.Try) or type(stmt).__name__ == "TryStar":
                walk(stmt.body)  # type: ignore[attr-defined]
                for handler in stmt.handlers:  # type: ignore[attr-defined]
                    if handler.type is not None:
                        note(loads(handler.type))
                    if handler.name:
                        bound.add(handler.name)
                    walk(handler.body)
                walk(stmt.orelse)  # type: ignore[attr-defined]
                walk(stmt.finalbody)  # type: ignore[attr-defined]
            else:
                note(loads(stmt))
                bound.update(bound_by(stmt))

    walk(stmts)
    return found


def bound_inside(fn: ast.AST) -> set[str]:
    body = getattr(fn, "body", [])
    return set().union(*(bound_by(s) for s in body)) if isinstance(body, list) else set()


def bound_by(stmt: ast.AST) -> set[str]:
    """Names a statement binds in its own scope (not inside functions or comprehensions)."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            return
        if isinstance(
            node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
        ):
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                names.add((alias.asname or alias.name).split(".")[0])
            return
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, ast.NamedExpr) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(stmt)
    return names


def calls(stmt: ast.AST, function: str) -> bool:
    return any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == function
        for n in ast.walk(stmt)
    )


def has_multiline_string(stmt: ast.AST) -> bool:
    return any(
        isinstance(n, (ast.Constant, ast.JoinedStr))
        and (isinstance(n, ast.JoinedStr) or isinstance(n.value, str))
        and n.lineno != n.end_lineno
        for n in ast.walk(stmt)
    )


def identifier(text: str, fallback: str) -> str:
    name = re.sub(r"\W+", "_", text.strip().lower()).strip("_")[:40].strip("_")
    if not name:
        return fallback
    if name[0].isdigit() or keyword.iskeyword(name):
        name = f"{fallback}_{name}"
    return name


def unique(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    if f"{name}_step" not in taken:
        return f"{name}_step"
    n = 2
    while f"{name}_{n}" in taken:
        n += 1
    return f"{name}_{n}"
