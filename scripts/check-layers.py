#!/usr/bin/python3
"""File-level call cycles, read from object files with nm.

Each object file is a node; an arrow A -> B means A uses a symbol (function
or data) that B defines.  A strongly connected component of more than one
file is a cycle: some file calls into a file that, directly or through
others, calls back into it.  Layers forbid that: calls go down, and
notifications come up through tables of function pointers (which nm does not
see as references, so they do not count).

    scripts/check-layers.py [--show] [--ignore SYMBOL]... OBJ...

--ignore drops references to one symbol.  The nginx module object
(ngx_http_wirehub_module) is such a symbol: every file names it to find its
configuration and context (ngx_http_get_module_*_conf), as every nginx
module's files name theirs; it is data, never called.

Exit status 1 and the cycles on stderr when any cycle exists.
"""

import os
import subprocess
import sys


def symbols(objs):
    """{obj: (defined, used)}: one nm run over all of them for each (nm
    per object took most of `make layers`)."""
    out = {obj: (set(), set()) for obj in objs}
    for i, flags in ((0, ["--defined-only", "-g"]), (1, ["-u"])):
        text = subprocess.run(["nm", "-A"] + flags + objs, check=True,
                              capture_output=True, text=True).stdout
        for line in text.splitlines():
            obj, _, rest = line.partition(":")
            if rest.strip():
                out[obj][i].add(rest.split()[-1])
    return out


def name(obj):
    return os.path.splitext(os.path.basename(obj))[0]


def graph(objs, ignore):
    owner = {}
    uses = {}
    for obj, (defined, used) in symbols(objs).items():
        for sym in defined - ignore:
            owner[sym] = name(obj)
        uses[name(obj)] = used
    edges = {n: set() for n in uses}
    for n, used in uses.items():
        for sym in used:
            target = owner.get(sym)
            if target is not None and target != n:
                edges[n].add(target)
    return edges


def components(edges):
    """Tarjan's strongly connected components, iteratively."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    comp.append(top)
                    if top == node:
                        break
                out.append(sorted(comp))
    return out


def main(argv):
    show, ignore, objs = False, set(), []
    args = iter(argv)
    for a in args:
        if a == "--show":
            show = True
        elif a == "--ignore":
            ignore.add(next(args))
        else:
            objs.append(a)
    if not objs:
        print(__doc__, file=sys.stderr)
        return 2
    edges = graph(objs, ignore)
    if show:
        for n in sorted(edges):
            print(f"{n} -> {' '.join(sorted(edges[n]))}")
    cycles = [c for c in components(edges) if len(c) > 1]
    for comp in cycles:
        members = set(comp)
        print(f"cycle of {len(comp)} files: {' '.join(comp)}", file=sys.stderr)
        for n in comp:
            back = sorted(edges[n] & members)
            print(f"    {n} -> {' '.join(back)}", file=sys.stderr)
    if cycles:
        return 1
    print(f"{len(objs)} object files, no call cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
