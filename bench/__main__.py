"""`python -m bench [all|overhead|memory|throughput|scale]`: run benchmarks, exit 1 when a target is missed."""

import argparse
import sys

from bench import memory, overhead, scale, throughput

BENCHMARKS = {"overhead": overhead.main, "memory": memory.main, "throughput": throughput.main,
              "scale": scale.main}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("which", nargs="?", default="all", choices=["all", *BENCHMARKS])
    which = parser.parse_args().which
    chosen = BENCHMARKS if which == "all" else {which: BENCHMARKS[which]}
    results = [run([]) for run in chosen.values()]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
