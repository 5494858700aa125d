"""What every benchmark needs: an emulator in its own process, a started service, a task, a results table."""

from __future__ import annotations

import hashlib
import logging
import os
import pathlib
import re
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass

ROOT = pathlib.Path(__file__).resolve().parent.parent
os.environ.setdefault("SERVICE_MANIFEST_PATH", str(ROOT / "service_manifest.yml"))
STARTUP_SECONDS = 15


@dataclass
class Row:
    """One figure of a results table; `floor` (optional) is what a naive design would reach, shown beside it."""

    figure: str
    measured: str
    target: str
    passed: bool
    floor: str = ""


def free_port(count: int = 1) -> int:
    """A port from which `count` consecutive ports were free a moment ago."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + count < 65000 and all(_is_free(base + i) for i in range(count)):
            return base
    raise RuntimeError("no free ports on loopback")


def _is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class EmulatorProcess:
    """`python -m mdcore_emulator` in a child process, so its work does not share this process's CPU and GIL."""

    def __init__(self, *args: str, nodes: int = 1):
        port = free_port(nodes)
        command = [sys.executable, "-u", "-m", "mdcore_emulator", "--port", str(port), "--nodes", str(nodes),
                   "--quiet", *args]
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True)
        self.urls = self._read_urls(nodes)

    def _read_urls(self, nodes: int) -> list[str]:
        urls: list[str] = []
        deadline = time.monotonic() + STARTUP_SECONDS
        while len(urls) < nodes and time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            urls += re.findall(r"https?://[^\s,]+/", line)
        if len(urls) < nodes:
            self.stop()
            raise RuntimeError(f"the emulator did not start ({len(urls)} of {nodes} URLs seen)")
        return urls[:nodes]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def started_service(config: dict, timeout: int | None = None):
    """A MetaDefender instance with `config` over the manifest defaults, started (engines read).

    `timeout` replaces the manifest's service timeout (what Assemblyline gives a task, and what the service
    reads its deadline from). As under run_service_once there is no Assemblyline service server here, so the framework's
    development mode is switched on (its safelist call then answers empty instead of retrying).
    """
    from assemblyline_v4_service.common import api

    from metadefender import MetaDefender

    api.DEVELOPMENT_MODE = True
    logging.disable(logging.INFO)

    service = MetaDefender(config)
    if timeout is not None:
        service.service_attributes.timeout = timeout
    service.start()
    return service


def make_task(path: str):
    """A service task for `path`, hashing the file in chunks (never whole in memory)."""
    from assemblyline.odm.messages.task import Task as ServiceTask

    digests = [hashlib.md5(), hashlib.sha1(), hashlib.sha256()]
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            for digest in digests:
                digest.update(chunk)
    md5, sha1, sha256 = (d.hexdigest() for d in digests)
    return ServiceTask({
        "sid": uuid.uuid4().hex[:22], "metadata": {}, "min_classification": "TLP:C",
        "fileinfo": {"magic": "data", "md5": md5, "sha1": sha1, "sha256": sha256,
                     "size": os.path.getsize(path), "type": "unknown"},
        "filename": os.path.basename(path), "service_name": "MetaDefender",
        # As Assemblyline's dispatcher sends it: every submission parameter, at its default unless the user set it.
        "service_config": {"archive_password": ""},
        "max_files": 50, "ttl": 1,
    })


def tasking_dir() -> str:
    """A fresh TASKING_DIR for this process, where the framework expects the task's file and writes results."""
    path = tempfile.mkdtemp(prefix="md-bench-")
    os.environ["TASKING_DIR"] = path
    return path


def stage_file(path: str, task, directory: str) -> None:
    """Put the file where the framework looks for it (a hard link, so no copy of large files)."""
    target = os.path.join(directory, task.fileinfo.sha256)
    if not os.path.exists(target):
        os.link(path, target)


def new_sample_task(workdir: str, name: str):
    """A task for a new small file of unique content (so no cache answers it), staged where the framework looks."""
    path = os.path.join(workdir, f"{name}-{time.time_ns()}.bin")
    with open(path, "wb") as handle:
        handle.write(f"benchmark file {name} {time.time_ns()}".encode())
    task = make_task(path)
    stage_file(path, task, workdir)
    return task


def write_files(workdir: str, count: int, label: str) -> list[str]:
    """`count` new small files of unique content (so no cache answers them) in `workdir`, their paths."""
    paths = []
    for index in range(count):
        path = os.path.join(workdir, f"{label}-{index}-{time.time_ns()}.bin")
        with open(path, "wb") as handle:
            handle.write(f"{label} file {index} {time.time_ns()}".encode())
        paths.append(path)
    return paths


def print_table(title: str, rows: list[Row]) -> bool:
    """Print the figures (with a naive-floor column when a row has a floor); True when every target is met."""
    width = max(len(r.figure) for r in rows)
    floors = any(row.floor for row in rows)

    def line(figure: str, measured: str, target: str, floor: str, result: str) -> str:
        return (f"  {figure.ljust(width)}  {measured:>14}  {target:>16}" + (f"  {floor:>11}" if floors else "")
                + f"  {result}")

    print(f"\n{title}")
    print(line("figure", "measured", "target", "naive floor", "result"))
    for row in rows:
        print(line(row.figure, row.measured, row.target, row.floor or "-", "pass" if row.passed else "FAIL"))
    return all(row.passed for row in rows)
