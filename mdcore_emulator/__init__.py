"""An emulator of OPSWAT MetaDefender Core's REST API (v4, or v3 under /metascan_rest/, or Core 5).

A real HTTP(S) server on loopback, one or more independent Cores, for developing,
demoing, integration-testing and benchmarking the MetaDefender service without a
licensed Core. Run it with `python -m mdcore_emulator --help`, or from Python:

    from mdcore_emulator import Emulator
    with Emulator(nodes=2, scan_seconds=0.2) as emu:
        emu.urls                     # base URLs, one per node
        emu.nodes[0].set_fault("down")

Endpoints: POST /file, GET /file/{id}, GET /file/converted/{id}, POST /file/{id}/cancel,
GET /hash/{hash}, GET /stat/engines, GET /stat/nodes, GET /version; with core_version=5 also
GET /readyz and GET /file/rules.

Engines: twelve AV engines (ClamAV ... Antiy-AVL), definitions 1 to 25 hours older than
the start, except Vir.IT eXplorer (30 days older); Quick Heal is listed but inactive
("temporary failed"); plus an archive engine (no definitions) and a file type engine.
`node.update_definitions()` moves every definition time one day forward; the reports of
the scans made before then carry `process_info.outdated_data` ["enginedefinitions"]. With
`engine_list="packages"` GET /stat/engines lists them as real Cores with Linux and Windows
packages do (inactive copies, names in other case, Total Defense with inactive packages
only, a utility engine); `node.update_inactive_packages()` gives the inactive ones new versions.

Hash lookups: GET /hash/{hash} answers the report of the newest scan of that file, under the
rule named by header `rule` (or `workflow`) when given; canceled scans never, unfinished ones
only with `hash_unfinished=True` (`--hash-unfinished`).

Reports: `report_flavour="4.3"` answers with an older Core's field set (see `as_core_4_3`).

Core 5 (`core_version=5`, `--core-version 5`): /version answers 5.14.0; GET /readyz answers
200 {"ready": true}, or 503 {"ready": false, "reason": ...} after `node.set_ready(False, reason)`
(`--not-ready NODE:REASON`) until `node.set_ready(True)`; GET /stat/nodes adds
scan_queue_details in queue places {available_slots: queue_limit minus files waiting (0: the
queue is full), total_scan_queue: queue_limit}; GET /file/rules lists `rules` ({name:
max_file_size}, `--rule NAME[:MAX_BYTES]`, default {"File scan": 200000000}; 0: no limit) as
[{"name", "max_file_size"}]; an upload under a rule the Core lacks gets 400 {"err": "...
Unknown rule: NAME"}, one above its rule's max_file_size 500 {"err": "Failed to request scan.
File size exceeded ..."}; process_info always has
outdated_data and verdicts ([scan_all_result_a] once complete, [] before), and a failed
engine's threat_found is "scan engine failed: timeout". Core 4 answers 404 to both paths.

Processing: each Core scans `concurrency` files at a time, the others wait in FIFO order
(at most `queue_limit`, then 503). A job's start is planned at upload; canceling a job
frees its queue position or its slot at once and the jobs behind it move up (their
reports and ScanRecords follow). GET /stat/nodes `scan_queue` counts the files waiting
and being scanned. Scans accepted while `never_complete` is on stay
below 100 % for ever.

Network: `latency` (or `--latency`) delays every answer, `node_latency` some Cores' only, to
model Cores on other machines.

Request rate limiting (Core 5.13+, which limits polls by data id first): with `limited_polls=N`
(`--limited-polls N`) the first N polls of every scan answer 429 {"err": ...} with header
Retry-After: `retry_after` seconds (`--retry-after`, default 1).

Faults (per node, see FAULTS): down, slow, upload_503, low_disk, result_500, garbage,
never_complete, lost, drop, bad_key.

"""

from .faults import FAULTS
from .server import Emulator, Node
from .stats import NodeStats, ScanRecord
from .verdicts import (
    ARCHIVE,
    ARCHIVE_PASSWORD,
    CDR,
    CDR_FAIL,
    CLEANED,
    EICAR,
    ENCRYPTED,
    FAILED,
    HEUR,
    MARKERS_HELP,
    MIXED,
    NONAME,
    NOT_SCANNED,
    OUTDATED,
    PUA,
    SCAN_PREFIX,
    SUSPICIOUS,
    UNKNOWN_CODE,
    UNSUPPORTED,
    VULNERABLE,
    scan_marker,
)

__doc__ += MARKERS_HELP

__all__ = [
    "ARCHIVE",
    "ARCHIVE_PASSWORD",
    "CDR",
    "CDR_FAIL",
    "CLEANED",
    "EICAR",
    "ENCRYPTED",
    "FAILED",
    "FAULTS",
    "HEUR",
    "MIXED",
    "NONAME",
    "NOT_SCANNED",
    "OUTDATED",
    "PUA",
    "SCAN_PREFIX",
    "SUSPICIOUS",
    "UNKNOWN_CODE",
    "UNSUPPORTED",
    "VULNERABLE",
    "Emulator",
    "Node",
    "NodeStats",
    "ScanRecord",
    "scan_marker",
]
