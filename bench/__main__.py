"""`python -m bench [NAME ...]`: run the benchmarks and update docs/benchmarks.md."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import bench
from bench.report import write_section


def main(argv: list[str]) -> int:
    names = argv or sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules(bench.__path__)
                           if m.name.startswith("bench_"))
    for name in names:
        module = importlib.import_module(f"bench.bench_{name}")
        print(f"== bench {name}", flush=True)
        section = module.main()
        print(section, flush=True)
        write_section(name, section)
    return 0


sys.exit(main(sys.argv[1:]))
