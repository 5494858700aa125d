"""Command line: `python -m mdcore_emulator --port 8008 [options]` (see --help)."""

import argparse
import signal
import sys
import threading

from .core import DEFAULT_MAX_FILE_SIZE, ENGINE_LISTS, REPORT_FLAVOURS
from .faults import FAULTS, parse_fault
from .server import Emulator
from .verdicts import MARKERS_HELP

_FAULT_HELP = "\n".join(f"  {name:<16}{text}" for name, text in FAULTS.items())


def _non_negative(kind):
    def parse(text: str):
        value = kind(text)
        if value < 0:
            raise argparse.ArgumentTypeError(f"must be >= 0, not {text}")
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mdcore_emulator",
        description="Serve emulated MetaDefender Core REST APIs on consecutive ports until Ctrl-C or SIGTERM.",
        epilog=f"{MARKERS_HELP}\nFaults (--fault NODE:FAULT, NODE counted from 0):\n{_FAULT_HELP}\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--port", type=_non_negative(int), default=8008, help="port of node 0; node i listens on PORT+i (default 8008)")
    add("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    add("--nodes", type=_non_negative(int), default=1, help="number of independent Cores (default 1)")
    add(
        "--apikey", default=None, metavar="KEY", help="require header apikey equal to KEY (default: accept any or none)"
    )
    add("--scan-seconds", type=_non_negative(float), default=1.0, help="scan time per file (default 1.0)")
    add(
        "--md-version",
        type=int,
        choices=(3, 4),
        default=4,
        help="Core API flavour: 4, or 3 under /metascan_rest/ (default 4)",
    )
    add("--concurrency", type=_non_negative(int), default=1, help="files scanned at once per Core (default 1)")
    add(
        "--queue-limit",
        type=_non_negative(int),
        default=500,
        help="files waiting per Core before uploads get 503 (default 500)",
    )
    add("--slow-seconds", type=_non_negative(float), default=2.0, help="delay of the slow fault (default 2.0)")
    add(
        "--fault",
        action="append",
        default=[],
        metavar="NODE:FAULT",
        help="start node NODE with FAULT active (repeatable), e.g. 1:down",
    )
    add("--node-scan-seconds", action="append", default=[], metavar="NODE:SECONDS",
        help="scan time of node NODE instead of --scan-seconds (repeatable), e.g. 2:2.5 for a slow Core")
    add("--node-concurrency", action="append", default=[], metavar="NODE:SLOTS",
        help="files node NODE scans at once instead of --concurrency (repeatable), e.g. 0:2 for a bigger Core")
    add("--outage", action="append", default=[], metavar="NODE:AFTER:SECONDS",
        help="node NODE refuses connections from AFTER s after its first upload for SECONDS s, then answers again "
             "with its scans as they are then (repeatable), e.g. 1:20:30")
    add("--engine-list", choices=ENGINE_LISTS, default="tidy",
        help="tidy: one entry per engine (default); packages: Linux and Windows packages of the engines, as real "
             "Cores list them (inactive copies, names in other case, engines with inactive packages only)")
    add("--report-flavour", choices=REPORT_FLAVOURS, default="current",
        help="current (default), or 4.3: reports with an older Core's field set (\"Clean\", no wait_time, "
             "queue_time or processing_time; while scanning code 0 with no engines yet)")
    add("--latency", type=_non_negative(float), default=0.0, metavar="SECONDS",
        help="delay every answer by SECONDS, like a Core on another machine (default 0)")
    add("--node-latency", action="append", default=[], metavar="NODE:SECONDS",
        help="delay of node NODE's answers instead of --latency (repeatable), e.g. 0:0.05")
    add("--hash-unfinished", action="store_true",
        help="GET /hash/{hash} also returns scans still queued or scanning (default: finished scans only)")
    add("--core-version", type=int, choices=(4, 5), default=4,
        help="4 (default), or 5: /version 5.14.0, GET /readyz, GET /file/rules, stat/nodes scan_queue_details, "
             "Core 5 report fields (verdicts, outdated_data always, engine errors in threat_found), uploads "
             "refused under an unknown rule (400) or above the rule's max_file_size (500)")
    add("--rule", action="append", default=[], metavar="NAME[:MAX_BYTES]",
        help=f"with --core-version 5: a rule the Core has, with its max_file_size (default {DEFAULT_MAX_FILE_SIZE}, "
             "0: no limit) (repeatable; any replaces the default rule \"File scan\")")
    add("--not-ready", action="append", default=[], metavar="NODE:REASON",
        help="with --core-version 5: node NODE starts not ready, GET /readyz answers 503 with REASON (repeatable)")
    add("--limited-polls", type=_non_negative(int), default=0, metavar="N",
        help="request rate limiting (Core 5.13+): the first N polls (GET /file/{id}) of every scan answer 429 with "
             "a Retry-After of --retry-after seconds (default 0: none)")
    add("--retry-after", type=_non_negative(float), default=1.0, metavar="SECONDS",
        help="the Retry-After of --limited-polls answers (default 1)")
    add("--tls", action="store_true", help="serve HTTPS with a fresh CA (its path is printed at start)")
    add("--cert-dir", default=None, help="where --tls writes its CA and certificate (default ./.emulator-tls/)")
    add("--quiet", action="store_true", help="no log line per request")
    return parser


def _faults(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[int, list[str]]:
    faults: dict[int, list[str]] = {}
    for spec in args.fault:
        try:
            index, name = parse_fault(spec, args.nodes)
        except ValueError as error:
            parser.error(str(error))
        faults.setdefault(index, []).append(name)
    return faults


def _per_node_seconds(parser: argparse.ArgumentParser, args: argparse.Namespace, option: str) -> dict[int, float]:
    """The NODE:SECONDS values of a repeatable per-node `option` (e.g. --node-scan-seconds)."""
    return {node: seconds for node, (seconds,) in
            _per_node_values(parser, args, option, "NODE:SECONDS, e.g. 2:2.5").items()}


def _per_node_values(parser: argparse.ArgumentParser, args: argparse.Namespace, option: str, example: str,
                     parts: int = 1) -> dict[int, tuple[float, ...]]:
    """The NODE:VALUE[:VALUE] numbers (>= 0) of a repeatable per-node `option`, by node."""
    values: dict[int, tuple[float, ...]] = {}
    for spec in getattr(args, option.removeprefix("--").replace("-", "_")):
        index, *numbers = spec.split(":")
        try:
            node, numbers = int(index), tuple(float(n) for n in numbers)
        except ValueError:
            parser.error(f"{option} expects {example}, not {spec!r}")
        if len(numbers) != parts or not 0 <= node < args.nodes or min(numbers) < 0:
            parser.error(f"{option} {spec!r}: expects {example} with an existing node and numbers >= 0")
        values[node] = numbers
    return values


def _rules(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, int] | None:
    """{name: max_file_size} of the --rule NAME[:MAX_BYTES] options; None when there are none."""
    rules: dict[str, int] = {}
    for spec in args.rule:
        name, sep, size = spec.rpartition(":")
        if not (sep and size.isdecimal()):
            name, size = spec, str(DEFAULT_MAX_FILE_SIZE)
        if not name:
            parser.error(f"--rule expects NAME[:MAX_BYTES], not {spec!r}")
        rules[name] = int(size)
    return rules or None


def _not_ready(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[int, str]:
    """{node index: reason} of the --not-ready NODE:REASON options."""
    reasons: dict[int, str] = {}
    for spec in args.not_ready:
        index, _, reason = spec.partition(":")
        if not (index.isdecimal() and int(index) < args.nodes and reason):
            parser.error(f"--not-ready expects NODE:REASON with an existing node, not {spec!r}")
        reasons[int(index)] = reason
    return reasons


def _emulator(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Emulator:
    """The Emulator the arguments describe (not started); exits 2 on arguments that do not fit."""
    if args.nodes < 1 or args.concurrency < 1:
        parser.error("--nodes and --concurrency must be at least 1")
    if (args.rule or args.not_ready) and args.core_version != 5:
        parser.error("--rule and --not-ready need --core-version 5")
    return Emulator(
        nodes=args.nodes,
        scan_seconds=args.scan_seconds,
        apikey=args.apikey,
        md_version=args.md_version,
        tls=args.tls,
        concurrency=args.concurrency,
        queue_limit=args.queue_limit,
        slow_seconds=args.slow_seconds,
        host=args.host,
        port=args.port,
        faults=_faults(parser, args),
        quiet=args.quiet,
        cert_dir=args.cert_dir or (".emulator-tls" if args.tls else None),
        node_scan_seconds=_per_node_seconds(parser, args, "--node-scan-seconds"),
        latency=args.latency,
        engine_list=args.engine_list,
        report_flavour=args.report_flavour,
        node_latency=_per_node_seconds(parser, args, "--node-latency"),
        hash_unfinished=args.hash_unfinished,
        core_version=args.core_version,
        rules=_rules(parser, args),
        node_concurrency={node: max(1, int(slots)) for node, (slots,) in
                          _per_node_values(parser, args, "--node-concurrency", "NODE:SLOTS, e.g. 0:2").items()},
        outages=_per_node_values(parser, args, "--outage", "NODE:AFTER:SECONDS, e.g. 1:20:30", parts=2),
        limited_polls=args.limited_polls,
        retry_after=args.retry_after,
    )


def main(argv: list[str] | None = None) -> int:
    """Run until SIGINT or SIGTERM; 0 on a clean stop, 1 when the emulator cannot start."""
    parser = _parser()
    args = parser.parse_args(argv)
    not_ready = _not_ready(parser, args)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        emulator = _emulator(parser, args).start()
    except (OSError, ValueError) as error:
        print(f"mdcore_emulator: cannot start: {error}", file=sys.stderr)
        return 1
    try:
        for index, reason in not_ready.items():
            emulator.nodes[index].set_ready(False, reason)
        for index, url in enumerate(emulator.urls):
            print(f"node {index}: {url}", flush=True)
        if emulator.ca_path:
            print(f"CA certificate: {emulator.ca_path}", flush=True)
        stop.wait()
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
