"""Benchmarks: ``python -m benchmarks [--quick] [NAME ...]`` (``make bench``).

Each ``bench_<name>.py`` module has ``run(quick: bool) -> List[Tuple[str, List[Row]]]``
(titled tables of rows from ``benchmarks.common``) and is timed against
its baselines in the same process; figures are ratios, never assertions.
"""
