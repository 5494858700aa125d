"""One task against a Core that sends 32 MiB of tiny JSON containers; prints the task's growth of peak RSS.

Run by test_hostile_core in a fresh process (`python rss_child.py report|stat/nodes TMPDIR`), so that the
peak measured is this task's and not the test run's.
"""

import json
import resource
import sys

from al_checks import run_task
from assemblyline_v4_service.common import api
from hostile_core import CHUNKED_HEADERS, HostileCore, answer, chunked, endless, json_answer, tiny_containers

from metadefender import MetaDefender

ROUTES = {"report": "GET file/[0-9a-z]+", "stat/nodes": "GET stat/nodes"}


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(scenario: str, tmp: str) -> None:
    api.DEVELOPMENT_MODE = True  # outside pytest the safelist call would wait for a service server for ever
    flood = endless(CHUNKED_HEADERS, lambda: chunked(tiny_containers(32 * 2**20)))
    idle = answer(json_answer(200, [{"statuses": [{"scan_queue": 0}]}]), keep_open=True)
    with HostileCore({ROUTES[scenario]: flood}) as bad, HostileCore({"GET stat/nodes": idle}) as good:
        service = MetaDefender({"base_url": [bad.url, good.url]})
        service.service_attributes.timeout = 10
        service.start()
        service.pool.cursor = 0
        sample = f"{tmp}/sample.bin"
        with open(sample, "wb") as handle:
            handle.write(b"rss sample")
        before = peak_mib()
        kind, _, _ = run_task(service, sample, f"{tmp}/task")
        service.stop()
    print(json.dumps({"kind": kind, "extra_mib": peak_mib() - before}))


if __name__ == "__main__":
    main(*sys.argv[1:])
