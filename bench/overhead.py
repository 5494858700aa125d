"""Latency the service adds on top of Core's own processing time, and how many result requests it makes.

For each processing time, one emulated Core (in its own process) scans a few files; for each file
the service's wall time for the whole task (Assemblyline's handle_task) is compared with the
emulator's own queue + processing time for that file, read from its final report.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter

import requests

from bench.common import EmulatorProcess, Row, new_sample_task, print_table, started_service, tasking_dir

SCAN_TIMES = (0.2, 1.3, 2.0, 3.1)
FILES_PER_TIME = 5
MAX_POLLS_2S = 20


def count_polls(service) -> Counter:
    """Count `GET file/{id}` requests per data id on every Core session of the service."""
    polls: Counter = Counter()

    def hook(response, *args, **kwargs):
        parts = response.request.path_url.strip("/").split("/")
        if response.request.method == "GET" and len(parts) >= 2 and parts[-2] == "file":
            polls[parts[-1]] += 1

    for node in service.pool.nodes:
        node.client.session.hooks["response"].append(hook)
    return polls


def core_seconds(url: str, data_id: str) -> float:
    """The emulator's own time for the file: queue time plus processing time of its final report."""
    info = requests.get(f"{url}file/{data_id}", timeout=10).json()["process_info"]
    return (info["queue_time"] + info["processing_time"]) / 1000


def measure(scan_seconds: float, workdir: str) -> tuple[list[float], list[float], list[int]]:
    """(overheads, Core times, polls) for FILES_PER_TIME files at this processing time."""
    overheads, core_times, poll_counts = [], [], []
    with EmulatorProcess("--scan-seconds", str(scan_seconds)) as emulator:
        service = started_service({"base_url": emulator.urls[0]})
        polls = count_polls(service)
        for index in range(FILES_PER_TIME + 1):
            task = new_sample_task(workdir, f"sample-{scan_seconds}-{index}")
            seen = set(polls)
            started = time.perf_counter()
            service.handle_task(task)
            wall = time.perf_counter() - started
            (data_id,) = set(polls) - seen
            if index == 0:
                continue  # the first task warms up connections and imports
            core = core_seconds(emulator.urls[0], data_id)
            overheads.append(wall - core)
            core_times.append(core)
            poll_counts.append(polls[data_id])
        service.stop()
    return overheads, core_times, poll_counts


def main(argv: list[str] | None = None) -> bool:
    argparse.ArgumentParser(prog="python -m bench.overhead", description=__doc__).parse_args(argv)
    workdir = tasking_dir()
    rows = []
    for scan_seconds in SCAN_TIMES:
        overheads, core_times, poll_counts = measure(scan_seconds, workdir)
        worst = max(overheads)
        limit = max(0.1, 0.1 * statistics.mean(core_times))
        rows.append(Row(f"overhead at {scan_seconds:g} s (worst of {len(overheads)}, median "
                        f"{statistics.median(overheads) * 1000:.0f} ms)", f"{worst * 1000:.0f} ms",
                        f"<= {limit * 1000:.0f} ms", worst <= limit))
        if scan_seconds == 2.0:
            rows.append(Row("result requests for a 2 s scan (worst)", str(max(poll_counts)),
                            f"<= {MAX_POLLS_2S}", max(poll_counts) <= MAX_POLLS_2S))
    return print_table("Latency overhead per file (service wall time minus Core's own time)", rows)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
