#!/usr/bin/env python3
"""The import graph of keras-runtime's modules, and its cycles.

Every `crate::`, `super::` and `self::` path in a module's code (its `use` items and paths in
expressions) is resolved to the module that defines the item, following `pub use` re-exports,
so `use crate::Result` is an edge to `error`, not to the crate root. `mod` declarations are not
edges. Prints each module's imports and the strongly connected components of more than one
module; exits 1 when there is a cycle.

Usage: scripts/module_graph.py [keras-runtime/src]
"""
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '..', 'keras-runtime', 'src')

# Module path (tuple) -> file.
files = {}
for d, _, names in os.walk(root):
    for n in names:
        if not n.endswith('.rs'):
            continue
        rel = os.path.relpath(os.path.join(d, n), root)[:-3].split(os.sep)
        if rel[-1] in ('mod', 'lib'):
            rel = rel[:-1]
        files[tuple(rel)] = os.path.join(d, n)


def strip(src):
    """The code without comments, strings, and `#[cfg(test)]` modules."""
    src = re.sub(r'//[^\n]*', '', src)
    src = re.sub(r'/\*.*?\*/', '', src, flags=re.S)
    src = re.sub(r'"(\\.|[^"\\])*"', '""', src)
    out, i = [], 0
    for m in re.finditer(r'#\[cfg\(test\)\]\s*mod\s+\w+\s*\{', src):
        if m.start() < i:
            continue
        out.append(src[i:m.start()])
        depth, j = 1, m.end()
        while depth:
            depth += {'{': 1, '}': -1}.get(src[j], 0)
            j += 1
        i = j
    out.append(src[i:])
    return ''.join(out)


code = {m: strip(open(f).read()) for m, f in files.items()}


def expand_use(tree, prefix=''):
    """The full paths of a `use` tree (`a::{b, c::d as e}` -> a::b, a::c::d)."""
    tree = tree.strip()
    m = re.match(r'^(.*?)\{(.*)\}$', tree, re.S)
    if not m:
        return [prefix + re.sub(r'\s+as\s+\w+$', '', tree)]
    head, body = m.group(1), m.group(2)
    parts, depth, cur = [], 0, ''
    for ch in body:
        if ch == ',' and depth == 0:
            parts.append(cur)
            cur = ''
            continue
        depth += ch == '{'
        depth -= ch == '}'
        cur += ch
    parts.append(cur)
    out = []
    for p in parts:
        if p.strip():
            out += expand_use(p, prefix + head)
    return out


def uses(mod):
    """(path, is_pub_use) for every use item of a module."""
    out = []
    for m in re.finditer(r'(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);', code[mod]):
        for p in expand_use(m.group(2)):
            out.append((p.replace(' ', '').replace('\n', ''), bool(m.group(1))))
    return out


def absolute(mod, path):
    """A path as a tuple from the crate root, or None for external crates."""
    segs = [s for s in path.split('::') if s]
    if not segs:
        return None
    if segs[0] == 'crate':
        return tuple(segs[1:])
    if segs[0] in ('super', 'self'):
        base = list(mod)
        while segs and segs[0] in ('super', 'self'):
            if segs.pop(0) == 'super':
                base.pop()
        return tuple(base + segs)
    if tuple(mod) + (segs[0],) in files:  # a child module named without `self::`
        return tuple(mod) + tuple(segs)
    return None


def resolve(path, seen=()):
    """The module that defines the item at `path` (re-exports followed)."""
    path = tuple(p for p in path if p != '*')
    for k in range(len(path), -1, -1):
        if path[:k] in files:
            mod, rest = path[:k], path[k:]
            break
    if not rest or (mod, rest) in seen:
        return mod
    item = rest[0]
    for p, public in uses(mod):
        if not public:
            continue
        target = absolute(mod, p)
        if target is None:
            continue
        if target[-1] == item or p.endswith('::*'):
            if p.endswith('::*'):
                target = target + (item,)
            found = resolve(target + rest[1:], seen + ((mod, rest),))
            if found != mod:
                return found
    return mod


graph = {m: set() for m in files}
for mod in files:
    paths = [p for p, _ in uses(mod)]
    # Paths in the code itself (use items are read above; macro_rules templates are not this
    # module's code: their paths belong to where the macro expands).
    body = re.sub(r'(pub(?:\([^)]*\))?\s+)?use\s+[^;]+;', '', code[mod])
    body = re.sub(r'macro_rules!\s*\w+\s*\{.*?\n\}', '', body, flags=re.S)
    paths += re.findall(r'\b((?:crate|super|self)(?:::\w+)+)', body)
    for p in paths:
        a = absolute(mod, p)
        if a is None:
            continue
        target = resolve(a)
        if target != mod and target in graph and target != ():
            graph[mod].add(target)

name = lambda m: '::'.join(m) or 'crate'
for m in sorted(graph):
    print(f'{name(m)} -> {", ".join(sorted(name(t) for t in graph[m]))}')

# Tarjan's strongly connected components.
index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]
sys.setrecursionlimit(10000)


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
        comps.append(comp)


for v in graph:
    if v not in index:
        visit(v)
cycles = [c for c in comps if len(c) > 1]
print()
if cycles:
    for c in cycles:
        print(f'cycle of {len(c)} modules: {", ".join(sorted(name(m) for m in c))}')
    sys.exit(1)
print(f'{len(graph)} modules, no import cycles')
