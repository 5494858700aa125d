"""pipeline.yaml: the release job pushes exactly the image tags its build step built.

The build script runs for real under bash with a stand-in `docker` that records its arguments; the push step's
`tags` are then resolved with the pipeline variables the script set, as Azure Pipelines would.
"""

from __future__ import annotations

import pathlib
import re
import subprocess

import pytest
import yaml

PIPELINE = pathlib.Path(__file__).resolve().parent.parent / "pipeline.yaml"
SET_VARIABLE = re.compile(r"^##vso\[task\.setvariable variable=(\w+)\](.*)$", re.MULTILINE)


def build_steps() -> list[dict]:
    stage = next(s for s in yaml.safe_load(PIPELINE.read_text())["stages"] if s["stage"] == "build")
    return stage["jobs"][0]["steps"]


def run_build_script(tmp_path: pathlib.Path, git_ref: str) -> tuple[list[str], dict[str, str]]:
    """The images the build step tags, and the pipeline variables it sets, for a push of `git_ref`."""
    script = next(step["script"] for step in build_steps() if "script" in step)
    calls = tmp_path / "docker-calls"
    docker = tmp_path / "docker"
    docker.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" >> "{calls}"\n')
    docker.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "BUILD_SOURCEBRANCH": git_ref}
    done = subprocess.run(["bash", "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, check=True)
    args = calls.read_text().splitlines()
    built = [args[i + 1] for i, arg in enumerate(args) if arg == "-t"]
    return built, dict(SET_VARIABLE.findall(done.stdout))


def pushed(variables: dict[str, str]) -> list[str]:
    push = next(step["inputs"] for step in build_steps() if step.get("task") == "Docker@2")
    assert push["command"] == "push"
    tags = [re.sub(r"\$\((\w+(?:\.\w+)*)\)", lambda m: variables.get(m.group(1), m.group(0)), line.strip())
            for line in push["tags"].splitlines() if line.strip()]
    return [f"{push['repository']}:{tag}" for tag in tags]


@pytest.mark.parametrize(("git_ref", "expected"), [
    ("refs/tags/v4.7.0.stable1", {"4.7.0.stable1", "stable"}),
    ("refs/tags/v4.7.0.dev12", {"4.7.0.dev12", "latest"}),
])
def test_the_push_step_pushes_exactly_the_built_tags(tmp_path, git_ref, expected):
    built, variables = run_build_script(tmp_path, git_ref)
    assert {image.split(":", 1)[1] for image in built} == expected
    assert sorted(pushed(variables)) == sorted(built)
