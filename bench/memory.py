"""Peak memory of a task: a 200 MiB file must cost at most 20 MiB more than a 1 KiB file.

Each file is scanned by a fresh child process (service started, one task), which reports its own
peak RSS; the emulator runs in another process, so only the service's memory is counted.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys

from bench.common import ROOT, EmulatorProcess, Row, make_task, print_table, stage_file, started_service, tasking_dir

SMALL = 1024
LARGE = 200 * 1024 * 1024
MAX_EXTRA_MIB = 20


def child(path: str, url: str) -> None:
    """Scan `path` once and print this process's peak RSS in KiB."""
    workdir = tasking_dir()
    service = started_service({"base_url": url, "md_timeout": 120})
    task = make_task(path)
    stage_file(path, task, workdir)
    service.handle_task(task)
    print(f"peak_rss_kib={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}")


def write_file(path: str, size: int) -> None:
    """A file of `size` bytes written in 1 MiB pieces (the parent never holds it whole either)."""
    piece = bytes(range(256)) * 4096
    with open(path, "wb") as handle:
        remaining = size
        while remaining > 0:
            handle.write(piece[:remaining])
            remaining -= len(piece)


def peak_rss_mib(path: str, url: str) -> float:
    completed = subprocess.run([sys.executable, "-m", "bench.memory", "--child", path, url], cwd=ROOT,
                               capture_output=True, text=True, timeout=600)
    for line in completed.stdout.splitlines():
        if line.startswith("peak_rss_kib="):
            return int(line.split("=", 1)[1]) / 1024
    raise RuntimeError(f"the child did not report its memory:\n{completed.stdout[-2000:]}{completed.stderr[-2000:]}")


def main(argv: list[str] | None = None) -> bool:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    parser.add_argument("--child", nargs=2, metavar=("FILE", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return True
    workdir = tasking_dir()
    small, large = f"{workdir}/small.bin", f"{workdir}/large.bin"
    write_file(small, SMALL)
    write_file(large, LARGE)
    with EmulatorProcess("--scan-seconds", "0.2") as emulator:
        small_mib = peak_rss_mib(small, emulator.urls[0])
        large_mib = peak_rss_mib(large, emulator.urls[0])
    extra = large_mib - small_mib
    return print_table("Peak memory of one task (child process RSS)", [
        Row("peak RSS, 1 KiB file", f"{small_mib:.1f} MiB", "(baseline)", True),
        Row("peak RSS, 200 MiB file", f"{large_mib:.1f} MiB", "", True),
        Row("extra for 200 MiB", f"{extra:.1f} MiB", f"<= {MAX_EXTRA_MIB} MiB", extra <= MAX_EXTRA_MIB),
    ])


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
