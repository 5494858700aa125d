"""The faults a node can simulate, and the parsing of `--fault NODE:FAULT`."""

FAULTS = {
    "down": "connections refused: the listener and open keep-alive connections are closed",
    "slow": "every response is delayed by slow_seconds",
    "upload_503": "POST /file answers 503 (queue full)",
    "low_disk": "POST /file answers 400 (since Core 4.19: not enough free disk space to take the file)",
    "result_500": "GET /file/{id} answers 500",
    "garbage": "every endpoint answers 200 with an HTML page instead of JSON",
    "never_complete": "scans accepted while it is on never finish (progress stays below 100)",
    "lost": "GET /file/{id} answers 404 {id: Not Found} (the Core lost the data id)",
    "drop": "the connection is closed mid-request without any response",
    "bad_key": "every request is refused as with a wrong API key (403 v4, 401 v3)",
}

GARBAGE_BODY = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
    b"<body><h1>Bad Gateway</h1><p>The proxy received an invalid response.</p></body></html>\n"
)


def check_fault(name: str) -> str:
    """Return `name` if it is a known fault, else raise ValueError listing the known ones."""
    if name not in FAULTS:
        raise ValueError(f"unknown fault {name!r}; known faults: {', '.join(FAULTS)}")
    return name


def parse_fault(spec: str, nodes: int) -> tuple[int, str]:
    """Parse "NODE:FAULT" (NODE a 0-based index below `nodes`) into (node, fault)."""
    index, sep, name = spec.partition(":")
    if not sep or not index.isdigit():
        raise ValueError(f"--fault expects NODE:FAULT, e.g. 0:down, not {spec!r}")
    if int(index) >= nodes:
        raise ValueError(f"--fault {spec!r}: node {index} does not exist (nodes: {nodes})")
    return int(index), check_fault(name)
