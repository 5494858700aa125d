"""`python -m bench [all|overhead|memory|throughput|scale|overload|overload-model] [options of that benchmark]`:
run benchmarks, exit 1 when a target is missed (`python -m bench.overload --help` lists the options of one)."""

import argparse
import sys

from bench import memory, overhead, overload, overload_model, scale, throughput

BENCHMARKS = {"overhead": overhead.main, "memory": memory.main, "throughput": throughput.main,
              "scale": scale.main, "overload": overload.main, "overload-model": overload_model.main}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("which", nargs="?", default="all", choices=["all", *BENCHMARKS])
    args, rest = parser.parse_known_args()
    if args.which == "all" and rest:
        parser.error(f"options are for one benchmark, not all: {' '.join(rest)}")
    chosen = BENCHMARKS if args.which == "all" else {args.which: BENCHMARKS[args.which]}
    results = [run(rest) for run in chosen.values()]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
