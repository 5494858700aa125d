"""`make demo`: run the service once, through Assemblyline's own run_service_once, against the Core emulator.

Starts the emulator on loopback, writes a manifest whose `base_url` points at it, scans a sample
(a harmless one made here, or the user's file) and prints a short summary of `result.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys

import yaml

from mdcore_emulator import Emulator

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "demo-output"
# The standard antivirus test string, assembled here so that this source file itself is not flagged.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
SAMPLES = {
    "eicar": ("eicar.com", EICAR),
    "clean": ("hello.txt", b"Hello, analyst. Nothing to see here.\n"),
    "mixed": ("mixed.bin", b"MDEMU:MIXED\n"),
    "cdr": ("report.docx", EICAR + b"\nMDEMU:CDR\n"),
    "not-scanned": ("odd.bin", b"MDEMU:NOT-SCANNED\n"),
    "archive": ("bundle.zip", b"PK\x03\x04 MDEMU:ARCHIVE\n"),
    "features": ("flashplayer.exe", b"MDEMU:HEUR\nMDEMU:VULNERABLE\nMDEMU:CDR\n"),
}


# The Core rule the --all-features run names (an emulated Core 5 lists it).
ALL_FEATURES_RULE = "Multiscan and CDR"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument("--file", help="scan this file instead of a generated sample")
    parser.add_argument("--sample", choices=sorted(SAMPLES), default="eicar", help="which generated sample to scan")
    parser.add_argument("--all-features", action="store_true",
                        help="switch the optional features on: sanitized file download, a Core rule, the "
                             "stale-definition check, heuristic virus names, a minimum of engines to score (and "
                             "scan the 'features' sample unless --file/--sample is given)")
    parser.add_argument("--real-core", action="store_true",
                        help="answer as the real Cores OPSWAT published: every engine package listed (inactive "
                             "copies, names in other case) and reports with Core 4.3's field set")
    parser.add_argument("--md-version", type=int, choices=(3, 4), default=4, help="emulate a Core v3 or v4")
    parser.add_argument("--core-version", type=int, choices=(4, 5), default=4,
                        help="5: a Core 5 (readyz, free queue places, a rule list with size limits, Core's own verdict "
                             "and outdated-data fields in reports)")
    parser.add_argument("--nodes", type=int, default=1, help="how many emulated Cores (round-robin)")
    parser.add_argument("--scan-seconds", type=float, default=0.5, help="the emulator's scan time per file")
    args = parser.parse_args(argv)
    if args.all_features and "--sample" not in (argv if argv is not None else sys.argv):
        args.sample = "features"
    return args


def prepare_sample(args: argparse.Namespace) -> pathlib.Path:
    """Copy the user's file, or write the chosen sample, into demo-output/."""
    OUTPUT.mkdir(exist_ok=True)
    if args.file:
        source = pathlib.Path(args.file)
        if not source.is_file():
            sys.exit(f"make demo: {source} is not a file")
        target = OUTPUT / source.name
        shutil.copyfile(source, target)
        return target
    name, content = SAMPLES[args.sample]
    target = OUTPUT / name
    target.write_bytes(content)
    return target


def manifest_defaults() -> dict:
    """The service variables' defaults, as the manifest gives them."""
    return yaml.safe_load((ROOT / "service_manifest.yml").read_text())["config"]


def write_manifest(directory: pathlib.Path, config: dict) -> pathlib.Path:
    """A copy of the service manifest in `directory`, with `config` over its defaults."""
    manifest = yaml.safe_load((ROOT / "service_manifest.yml").read_text())
    manifest["config"].update(config)
    path = directory / "service_manifest.yml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path


def demo_config(urls: list[str], args: argparse.Namespace) -> dict:
    """`base_url` pointing at the emulator, and the optional features when asked for."""
    config = {"base_url": urls if len(urls) > 1 else urls[0], "md_version": args.md_version}
    if args.all_features:
        config.update(fetch_sanitized_file=True, rule=ALL_FEATURES_RULE, stale_definition_days=7)
        config["av_config"] = {**manifest_defaults()["av_config"], "min_engines_to_score": 5,
                               "heuristic_name_keys": ["HEUR:", "Heur.", "Suspicious", "not-a-virus"]}
    return config


def run_service_once(sample: pathlib.Path, manifest: pathlib.Path) -> pathlib.Path:
    """Run the service once on `sample` in a child process, as Assemblyline's developer tooling does.

    Returns the path of the written result.json; exits with the log's path when the run failed.
    """
    env = dict(os.environ, SERVICE_MANIFEST_PATH=str(manifest), PYTHONPATH=str(ROOT))
    env.pop("TASKING_DIR", None)  # run_service_once stages the file in the temp dir, where the task must look
    command = [sys.executable, "-m", "assemblyline_v4_service.dev.run_service_once", "metadefender.MetaDefender",
               str(sample)]
    completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    output_dir = sample.parent / f"{sample.name}_metadefender"
    log = sample.parent / "run_service_once.log"
    log.write_text(completed.stdout + completed.stderr)
    if completed.returncode != 0 or not (output_dir / "result.json").exists():
        sys.exit(f"make demo: the service run failed, see {log}")
    return output_dir / "result.json"


def summary(result_path: pathlib.Path) -> str:
    """A few lines an analyst can read: hits, failures, score, where the files are."""
    result = json.loads(result_path.read_text())
    sections = result["result"]["sections"]
    lines = [f"MetaDefender result: score {result['result']['score']}",
             f"  {result['response']['service_context']}"]
    for section in sections:
        title = section["title_text"]
        if section["depth"] == 0:
            lines.append(f"  [{title}]")
        else:
            heuristic = section.get("heuristic")
            score = f" (heuristic {heuristic['heur_id']}, score {heuristic['score']})" if heuristic else ""
            lines.append(f"    - {title}{score}")
            lines += [f"        {key}: {value}" for key, value in _shown_items(section)]
    if not sections:
        lines.append("  no section: every engine that scanned the file found nothing")
    for item in result["response"]["supplementary"]:
        lines.append(f"  supplementary file: {item['name']}")
    lines.append(f"  full result: {result_path}")
    return "\n".join(lines)


def _shown_items(section: dict) -> list[tuple[str, object]]:
    """The body items worth a line in the summary: why hits do not score, Core's own verdict, a product's CVEs."""
    if section.get("body_format") != "KEY_VALUE":
        return []
    body = json.loads(section["body"])
    shown = ("not_scored", "core_result", "core_blocked_reason", "core_verdicts", "severity", "cve")
    return [(key, body[key]) for key in shown if key in body]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sample = prepare_sample(args)
    flavour = {"engine_list": "packages", "report_flavour": "4.3"} if args.real_core else {}
    if args.core_version == 5:
        flavour.update(core_version=5, rules={"File scan": 200 * 10**6, ALL_FEATURES_RULE: 200 * 10**6})
    with Emulator(nodes=args.nodes, scan_seconds=args.scan_seconds, md_version=args.md_version, **flavour) as emulator:
        engines = sum(1 for engine in emulator.nodes[0].engines if engine.engine_type == "av")
        listed = len(emulator.nodes[0].listing)
        print(f"Emulated MetaDefender Core(s): {', '.join(emulator.urls)} ({engines} antivirus engines each, "
              f"{listed} entries in the engine list)")
        print(f"Scanning {sample.relative_to(ROOT)} with run_service_once ...")
        manifest = write_manifest(OUTPUT, demo_config(emulator.urls, args))
        result_path = run_service_once(sample, manifest)
    print(summary(result_path))


if __name__ == "__main__":
    main()
