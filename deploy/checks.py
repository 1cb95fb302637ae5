#!/usr/bin/env python3
"""Checks of deploy/ that no installed tool makes, run by deploy/check.

  checks.py docker-context   the Dockerfile's build context contains every file the build needs
  checks.py compose-paths    every file and folder that compose.yaml mounts or builds exists

Each exits 1 and prints one line per problem when a check fails.
"""

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "deploy/docker/Dockerfile"
# BuildKit reads the ignore file named after the Dockerfile, next to it, before the one at the
# root of the build context.
DOCKERIGNORE = REPO / "deploy/docker/Dockerfile.dockerignore"
# Tracked files that the image build does not need, so the ignore file may leave them out.
NOT_NEEDED = (".ci/", "deploy/")


def ignore_pattern_regex(pattern: str) -> re.Pattern:
    """Translates one .dockerignore pattern into a regex over slash-separated paths.

    `**` matches any number of folders, `*` and `?` match within one path element.
    """
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def read_ignore_rules(path: Path) -> list[tuple[bool, re.Pattern]]:
    """Reads (negated, regex) rules, in file order, from a .dockerignore file."""
    rules = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line[1:].strip() if negated else line
        pattern = pattern.strip("/")
        rules.append((negated, ignore_pattern_regex(pattern)))
    return rules


def is_excluded(path: str, rules: list[tuple[bool, re.Pattern]]) -> bool:
    """Applies the rules as Docker does: the last rule that matches the path or one of its
    parent folders decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    excluded = False
    for negated, regex in rules:
        if any(regex.match(candidate) for candidate in candidates):
            excluded = not negated
    return excluded


def copy_sources(dockerfile: Path) -> list[str]:
    """Lists the build-context sources of the Dockerfile's COPY and ADD instructions (those
    without --from, which copy from another stage)."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    sources = []
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].upper() not in ("COPY", "ADD"):
            continue
        arguments = words[1:]
        if any(word.startswith("--from=") for word in arguments):
            continue
        paths = [word for word in arguments if not word.startswith("--")]
        sources.extend(paths[:-1])
    return sources


def check_docker_context() -> list[str]:
    problems = []
    rules = read_ignore_rules(DOCKERIGNORE)
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.split()

    for source in copy_sources(DOCKERFILE):
        if source == ".":
            continue
        if not (REPO / source).exists():
            problems.append(f"{DOCKERFILE.name}: COPY source {source} does not exist")
        elif is_excluded(source, rules):
            problems.append(f"{DOCKERIGNORE.name} excludes {source}, which the Dockerfile copies")

    for path in tracked:
        if path.startswith(NOT_NEEDED) or not (REPO / path).exists():
            continue
        if is_excluded(path, rules):
            problems.append(f"{DOCKERIGNORE.name} excludes {path}, which the build may need")

    members = tomllib.loads((REPO / "Cargo.toml").read_text())["workspace"]["members"]
    for member in members:
        manifest = f"{member}/Cargo.toml"
        if manifest not in tracked:
            problems.append(f"workspace member {member} has no tracked Cargo.toml")

    for path in (
        ".git/HEAD",
        "target/release/invoicer",
        "target/dist/invoicer",
        "invoicer-data/invoice-query.db",
    ):
        if not is_excluded(path, rules):
            problems.append(f"{DOCKERIGNORE.name} lets {path} into the build context")
    return problems


def check_compose_paths(config_json: str) -> list[str]:
    problems = []
    config = json.loads(config_json)
    for name, service in config.get("services", {}).items():
        build = service.get("build")
        if build:
            context = Path(build["context"])
            dockerfile = context / build.get("dockerfile", "Dockerfile")
            if not context.is_dir():
                problems.append(f"service {name}: build context {context} is not a folder")
            if not dockerfile.is_file():
                problems.append(f"service {name}: Dockerfile {dockerfile} does not exist")
        for volume in service.get("volumes", []):
            if volume.get("type") == "bind" and not Path(volume["source"]).exists():
                problems.append(f"service {name}: bind mount source {volume['source']} does not exist")
    return problems


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in ("docker-context", "compose-paths"):
        print(__doc__, file=sys.stderr)
        return 2
    if sys.argv[1] == "docker-context":
        problems = check_docker_context()
    else:
        problems = check_compose_paths(sys.stdin.read())
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
