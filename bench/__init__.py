"""Benchmarks against the reference peers (DCMTK, Orthanc) on the same machine in the same run.

Each `bench/bench_*.py` module has `main() -> str` returning a Markdown section; `python -m bench`
(`make bench`) runs them all and writes each section into `docs/benchmarks.md` between
`<!-- bench:NAME -->` and `<!-- /bench:NAME -->`. Results are ratios to the peer, never
pass/fail limits.
"""
