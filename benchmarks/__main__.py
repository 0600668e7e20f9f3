"""Run the benchmarks: ``python -m benchmarks [--quick] [--ops cupy] [NAME ...]``.

NAME is a module suffix: ``pooling`` runs ``bench_pooling.py``. With no NAME, all run.
``--ops cupy`` runs the pooling benchmark on CupyOps instead (``cupy_pooling.py``; needs
a CUDA GPU).
"""
import argparse
import importlib
import pathlib

from .common import print_table, single_thread


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", help="which benchmarks (default: all)")
    parser.add_argument("--quick", action="store_true", help="smaller shapes, fewer repeats")
    parser.add_argument("--ops", choices=["numpy", "cupy"], default="numpy",
                        help="cupy: the pooling layers on CupyOps, on the GPU (only 'pooling')")
    args = parser.parse_args()
    if args.ops == "cupy":
        if set(args.names) - {"pooling"}:
            parser.error("--ops cupy runs only the pooling benchmark")
        from .cupy_pooling import run as run_cupy

        for title, rows in run_cupy(quick=args.quick):
            print_table(title, rows)
        return
    here = pathlib.Path(__file__).parent
    available = sorted(p.stem[len("bench_"):] for p in here.glob("bench_*.py"))
    names = args.names or available
    unknown = sorted(set(names) - set(available))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; available: {available}")
    single_thread()
    for name in names:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        for title, rows in module.run(quick=args.quick):
            print_table(title, rows)


if __name__ == "__main__":
    main()
