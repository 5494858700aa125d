"""Many Cores, many instances: a file must cost the same with 1 Core or 30, and the files must still spread.

Latency: one service instance scans small files one after another on 1, 10 and 30 emulated Cores that
answer every request after NETWORK_DELAY (a Core on another machine), each scan taking SCAN_SECONDS.
Per Core count: the median and p99 task time (Assemblyline's handle_task), the control requests per
file (anything but the upload and the result polls: stat/nodes, hash look-ups, stat/engines) and the service
process's CPU per task.

Spread: 8 instances (processes) and 10 Cores scanning 4 files at a time in 0.5 s each, one of them 5x
slower. Ideal rate: what the Cores can do (9 x 4 / 0.5 + 4 / 2.5 files/s), but never more than the
instances can ask for: each handles one task at a time, and a task lasts at least one fast scan.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time

from bench.common import EmulatorProcess, Row, new_sample_task, print_table, started_service, tasking_dir
from bench.throughput import run

NETWORK_DELAY = 0.02
SCAN_SECONDS = 0.3
CORE_COUNTS = (1, 10, 30)
FILES_PER_COUNT = 30
# Two queue readings (the file's pair of candidate Cores; its spare's too when the file would wait) and, for a file
# a retry may take over, a look-up of an earlier scan on each of its three candidates, all in parallel: at most 5
# while the file does not wait, whatever the number of Cores.
MAX_CONTROL_PER_FILE = 5.0
# CPU per task must not grow with the number of Cores: 30 Cores may cost at most this much over 10 Cores, which
# ask the same one stat/nodes per file (1 Core asks none, so its figure is only reported).
MAX_CPU_GROWTH = 1.25
CPU_BASE_CORES = 10

SPREAD_INSTANCES, SPREAD_CORES, SPREAD_FILES = 8, 10, 960
SPREAD_SCAN, SPREAD_SLOTS, SLOW_FACTOR = 0.5, 4, 5
SPREAD_RATIO, MAX_P99_TO_MEDIAN = 0.85, 3.0


def p99(values: list[float]) -> float:
    """The nearest-rank 99th percentile: at most 1 % of the values lie above it."""
    ordered = sorted(values)
    return ordered[math.ceil(0.99 * len(ordered)) - 1]


def count_control_requests(service) -> list[int]:
    """A one-item list counting every request to a Core that is neither an upload nor a result poll."""
    control = [0]

    def hook(response, *args, **kwargs):
        method, parts = response.request.method, response.request.path_url.strip("/").split("/")
        upload = method == "POST" and parts[-1] == "file"
        poll = method == "GET" and len(parts) >= 2 and parts[-2] == "file"
        control[0] += not (upload or poll)

    for node in service.pool.nodes:
        node.client.session.hooks["response"].append(hook)
    return control


def measure(cores: int, workdir: str) -> tuple[list[float], float, float]:
    """(task times, control requests per file, CPU seconds per task) of one instance on `cores` Cores."""
    args = ["--scan-seconds", str(SCAN_SECONDS), "--latency", str(NETWORK_DELAY)]
    with EmulatorProcess(*args, nodes=cores) as emulator:
        service = started_service({"base_url": emulator.urls})
        control = count_control_requests(service)
        times, cpu = [], 0.0
        for index in range(FILES_PER_COUNT + 1):
            task = new_sample_task(workdir, f"scale-{cores}-{index}")
            if index == 1:
                control[0] = 0  # the first task warms up connections and imports
            started, cpu_started = time.perf_counter(), time.process_time()
            service.handle_task(task)
            if index:
                times.append(time.perf_counter() - started)
                cpu += time.process_time() - cpu_started
        service.stop()
    return times, control[0] / FILES_PER_COUNT, cpu / FILES_PER_COUNT


def latency_rows(workdir: str) -> list[Row]:
    rows, base, base_cpu = [], None, None
    for cores in CORE_COUNTS:
        times, control, cpu = measure(cores, workdir)
        median = statistics.median(times)
        base = median if base is None else base
        limit = base + NETWORK_DELAY
        rows += [
            Row(f"{cores} Cores: task time median (p99 {p99(times) * 1000:.0f} ms)", f"{median * 1000:.0f} ms",
                "(baseline)" if cores == 1 else f"<= {limit * 1000:.0f} ms", median <= limit),
            Row(f"{cores} Cores: control requests per file", f"{control:.2f}", f"<= {MAX_CONTROL_PER_FILE:g}",
                control <= MAX_CONTROL_PER_FILE),
            cpu_row(cores, cpu, base_cpu),
        ]
        base_cpu = cpu if cores == CPU_BASE_CORES else base_cpu
    return rows


def cpu_row(cores: int, cpu: float, base_cpu: float | None) -> Row:
    """The CPU figure, against MAX_CPU_GROWTH times the CPU_BASE_CORES figure once that is known."""
    figure, measured = f"{cores} Cores: service CPU per task", f"{cpu * 1000:.1f} ms"
    if base_cpu is None:
        return Row(figure, measured, "(reported)" if cores != CPU_BASE_CORES else "(baseline)", True)
    limit = MAX_CPU_GROWTH * base_cpu
    return Row(figure, measured, f"<= {limit * 1000:.1f} ms", cpu <= limit)


def spread_rows(workdir: str) -> list[Row]:
    slow = SPREAD_SCAN * SLOW_FACTOR
    cores_rate = (SPREAD_CORES - 1) * SPREAD_SLOTS / SPREAD_SCAN + SPREAD_SLOTS / slow
    ideal = min(cores_rate, SPREAD_INSTANCES / SPREAD_SCAN)
    args = ["--scan-seconds", str(SPREAD_SCAN), "--concurrency", str(SPREAD_SLOTS),
            f"--node-scan-seconds={SPREAD_CORES - 1}:{slow}"]
    with EmulatorProcess(*args, nodes=SPREAD_CORES) as emulator:
        measured = run(emulator.urls, {"max_md_scan_time": 2 * SPREAD_SCAN}, workdir, SPREAD_INSTANCES, SPREAD_FILES)
        on_slow = measured.uploads.get(emulator.urls[-1].rstrip("/"), 0)
    rate = SPREAD_FILES / measured.seconds
    median, tail = statistics.median(measured.task_times), p99(measured.task_times)
    name = f"{SPREAD_INSTANCES} x {SPREAD_CORES}"
    return [
        Row(f"{name}: files with a result", f"{measured.done}/{SPREAD_FILES}", f"{SPREAD_FILES}/{SPREAD_FILES}",
            measured.done == SPREAD_FILES),
        Row(f"{name}: files/s (ideal {ideal:.1f} = min(Cores {cores_rate:.1f}, instances "
            f"{SPREAD_INSTANCES / SPREAD_SCAN:.0f}))", f"{rate:.2f}/s ({rate / ideal:.2f}x)",
            f">= {SPREAD_RATIO * ideal:.2f}/s", rate >= SPREAD_RATIO * ideal),
        Row(f"{name}: task time p99 / median ({tail:.2f} s / {median:.2f} s; {on_slow} files on the slow Core)",
            f"{tail / median:.2f}", f"<= {MAX_P99_TO_MEDIAN:g}", tail <= MAX_P99_TO_MEDIAN * median),
    ]


def main(argv: list[str] | None = None) -> bool:
    argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    workdir = tasking_dir()
    latency = print_table(f"Many Cores: one instance, {SCAN_SECONDS:g} s scans, every answer after "
                          f"{NETWORK_DELAY * 1000:.0f} ms", latency_rows(workdir))
    spread = print_table(f"Many instances: {SPREAD_INSTANCES} instances, {SPREAD_CORES} Cores x {SPREAD_SLOTS} slots, "
                         f"one {SLOW_FACTOR}x slower, {SPREAD_FILES} files", spread_rows(workdir))
    return latency and spread


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
