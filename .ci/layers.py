#!/usr/bin/env python3
"""Checks the layering ARCHITECTURE.md describes: every crate depends only
on crates of lower floors, and the top-level modules of one crate do not
import each other in a cycle. Prints what breaks the rules; exit 1 if any."""

import pathlib
import re
import sys
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent

# Floors, bottom up: a crate may depend on crates of lower floors only.
FLOORS = [
    ["cordon-core", "cordon-yaml", "cordon-fetch"],
    ["cordon-policy"],
    ["cordon-flow"],
    ["cordon-audit"],
    ["cordon-detect", "cordon-sim"],
    ["cordon-incident"],
    ["cordon-response"],
    ["cordon-store"],
    ["cordon-pipeline", "cordon-taxii", "cordon-lake"],
    ["cordon-gateway", "cordon-agent"],
    ["cordon-server"],
    ["cordon-cli"],
]
FLOOR = {name: i for i, names in enumerate(FLOORS) for name in names}

problems = []
crates = sorted((ROOT / "crates").iterdir())
for crate in crates:
    manifest = tomllib.loads((crate / "Cargo.toml").read_text())
    name = manifest["package"]["name"]
    if name not in FLOOR:
        problems.append(f"{name}: not on any floor (add it to .ci/layers.py and ARCHITECTURE.md)")
        continue
    for dep in manifest.get("dependencies", {}):
        if dep in FLOOR and FLOOR[dep] >= FLOOR[name]:
            problems.append(f"{name} depends on {dep}, which is not on a lower floor")

    # Module cycles: top-level modules (src/X.rs or src/X/) and what they use.
    src = crate / "src"
    modules = {p.stem for p in src.glob("*.rs")} | {p.name for p in src.iterdir() if p.is_dir()}
    modules -= {"lib", "main", "tests"}
    edges = {m: set() for m in modules}
    for module in modules:
        files = [src / f"{module}.rs"] if (src / f"{module}.rs").exists() else []
        if (src / module).is_dir():
            files += list((src / module).rglob("*.rs"))
        for f in files:
            if f.name == "tests.rs" or "tests" in f.parts[len(src.parts):-1]:
                continue
            text = f.read_text()
            # Leave out inline test modules and comments (doc links).
            text = re.split(r"#\[cfg\(test\)\]\s*mod tests\s*\{", text)[0]
            text = re.sub(r"//[^\n]*", "", text)
            for other in re.findall(r"\bcrate::(\w+)", text):
                if other in modules and other != module:
                    edges[module].add(other)
            for group in re.findall(r"\buse crate::\{([^}]*)\}", text):
                for other in re.findall(r"(\w+)::", group):
                    if other in modules and other != module:
                        edges[module].add(other)

    # Report each cycle once, by depth-first search.
    state = {}
    def visit(m, path):
        state[m] = "open"
        for n in sorted(edges[m]):
            if state.get(n) == "open":
                cycle = path[path.index(n):] + [n]
                problems.append(f"{name}: modules import each other: {' -> '.join(cycle)}")
            elif n not in state:
                visit(n, path + [n])
        state[m] = "done"
    for m in sorted(modules):
        if m not in state:
            visit(m, [m])

for p in problems:
    print(p)
sys.exit(1 if problems else 0)
