#!/usr/bin/env python3
"""Finds import circles between the top-level modules of each library crate.

Crate boundaries make a circle between crates a compile error; inside a crate
nothing does, so CI runs this (issue 27). For every `.rs` file under a crate's
`src/` it collects the paths the file names (`use` trees expanded, `crate::`
and `super::` paths in bodies, names re-exported at the crate root resolved to
the module that defines them) and draws an arrow from the file's top-level
module to each top-level module it names. A strongly connected component of
more than one module is a circle (test modules are left out: a test may
reach anywhere in its crate): each is printed with one file:line per arrow
so it can be cut, and the script exits 1.

Usage: module-cycles.py [--graph] CRATE_SRC_DIR...
"""

import re
import sys
from pathlib import Path

USE = re.compile(r"\b(?:pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", re.S)
PATH = re.compile(r"\b(crate|super)((?:::\w+)+)")
COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
STRING = re.compile(r'"(?:\\.|[^"\\])*"')


def expand(tree):
    """Expands a `use` tree (`a::{b, c::{d}}`) into its paths."""
    tree = re.sub(r"\s+", "", tree)
    out = []

    def walk(prefix, text):
        depth, start, parts = 0, 0, []
        for i, ch in enumerate(text):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                parts.append(text[start:i])
                start = i + 1
        parts.append(text[start:])
        for part in filter(None, parts):
            brace = part.find("{")
            if brace >= 0:
                walk(prefix + part[:brace], part[brace + 1 : part.rindex("}")])
            else:
                out.append(prefix + re.sub(r"\bas\b.*", "", part))

    walk("", tree)
    return out


TEST_MODULE = re.compile(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*\{")


def without_tests(text):
    """Drops `#[cfg(test)] mod … { … }` blocks: a test may reach anywhere in
    its crate without making production code depend on it."""
    while True:
        m = TEST_MODULE.search(text)
        if not m:
            return text
        depth, i = 1, m.end()
        while depth and i < len(text):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        text = text[: m.start()] + "\n" * text.count("\n", m.start(), i) + text[i:]


def module_of(src, path):
    """The module path of a file: `host/src/egress/hook.rs` -> ['egress', 'hook']."""
    rel = path.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts.pop()
    return parts


def resolve(here, segments):
    """Resolves `crate::`/`super::`/`self::` segments to an absolute module path."""
    if segments[0] == "crate":
        return segments[1:]
    if segments[0] not in ("super", "self"):
        return None
    base, i = list(here), 0
    while i < len(segments) and segments[i] in ("super", "self"):
        if segments[i] == "super":
            base = base[:-1]
        i += 1
    return base + segments[i:]


def root_reexports(src, top_modules):
    """Names the crate root re-exports, mapped to the top-level module they come from."""
    names = {}
    for lib in ("lib.rs", "main.rs"):
        path = src / lib
        if not path.exists():
            continue
        text = STRING.sub('""', COMMENT.sub("", path.read_text()))
        for tree in USE.findall(text):
            for used in expand(tree):
                segs = used.split("::")
                if segs[0] in top_modules and len(segs) > 1:
                    names[segs[-1]] = segs[0]
    return names


def arrows(src):
    files = sorted(src.rglob("*.rs"))
    top_modules = {module_of(src, f)[0] for f in files if module_of(src, f)}
    reexports = root_reexports(src, top_modules)
    found = {}
    for f in files:
        here = module_of(src, f)
        if not here:
            continue
        text = without_tests(STRING.sub('""', COMMENT.sub("", f.read_text())))
        paths = []
        for m in USE.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            paths += [(used, line) for used in expand(m.group(1))]
        for m in PATH.finditer(USE.sub(lambda u: "\n" * u.group(0).count("\n"), text)):
            paths.append((m.group(0), text.count("\n", 0, m.start()) + 1))
        for used, line in paths:
            segs = used.split("::")
            target = resolve(here, segs)
            if not target:
                continue
            first = target[0]
            if first not in top_modules:
                first = reexports.get(first)
            if first and first != here[0]:
                found.setdefault((here[0], first), f"{f}:{line}")
    return top_modules, found


def circles(nodes, edges):
    """Tarjan's strongly connected components with more than one node."""
    graph = {n: sorted(b for (a, b) in edges if a == n) for n in nodes}
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for n in sorted(nodes):
        if n not in index:
            visit(n)
    return out


def main(argv):
    show = "--graph" in argv
    dirs = [a for a in argv if a != "--graph"]
    failed = False
    for d in dirs:
        src = Path(d)
        nodes, edges = arrows(src)
        if show:
            for (a, b), where in sorted(edges.items()):
                print(f"{src}: {a} -> {b}    ({where})")
        for comp in circles(nodes, edges):
            failed = True
            print(f"{src}: import circle between {', '.join(comp)}:")
            for (a, b), where in sorted(edges.items()):
                if a in comp and b in comp:
                    print(f"  {a} -> {b}    {where}")
    if failed:
        print("cut each circle: move the shared piece down, or invert the arrow with a trait")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
