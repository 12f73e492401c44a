"""Reading a Dockerfile the way the image build uses it: stages, their ENV, COPY/RUN steps, CMD and HEALTHCHECK.

`parse_dockerfile` understands the instruction forms this repository's
Dockerfile uses (ARG defaults, ``KEY=value`` ENV and LABEL, JSON-form CMD and
HEALTHCHECK); tests/deploy/test_container.py checks and the throughput benchmark runs
what it finds instead of retyping it; tests/deploy/test_compose.py reads its base images.
"""

from __future__ import annotations

import json
import re
import shlex


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with continuation lines joined and comments dropped."""
    instructions, pending = [], ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if pending and line.lstrip().startswith("#"):
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        keyword, _, rest = pending.strip().partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        pending = ""
    return instructions


class Stage:
    def __init__(self, base: str, name: str | None):
        self.base, self.name = base, name
        self.env: dict[str, str] = {}
        self.args: dict[str, str] = {}
        self.labels: dict[str, str] = {}
        self.steps: list[tuple[str, str]] = []
        self.workdir = "/"
        self.user = "root"
        self.cmd: list[str] | None = None
        self.healthcheck: tuple[list[str], str] | None = None
        self.expose: list[str] = []


def _expand(value: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: variables.get(m[1], m[0]), value)


def parse_dockerfile(text: str) -> list[Stage]:
    """The stages, with what each instruction sets (ARG/ENV expanded as Docker does for these forms)."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for keyword, rest in dockerfile_instructions(text):
        stage = stages[-1] if stages else None
        if keyword == "ARG":
            name, _, default = rest.partition("=")
            (stage.args if stage else global_args)[name] = default
        elif keyword == "FROM":
            parts = rest.split()
            stages.append(Stage(_expand(parts[0], global_args), parts[2] if len(parts) > 2 else None))
        elif keyword in ("ENV", "LABEL"):
            target = stage.env if keyword == "ENV" else stage.labels
            for pair in shlex.split(rest):
                name, _, value = pair.partition("=")
                target[name] = _expand(value, {**global_args, **stage.args, **stage.env})
        elif keyword == "WORKDIR":
            stage.workdir = rest
        elif keyword == "USER":
            stage.user = _expand(rest, stage.args)
        elif keyword == "CMD":
            stage.cmd = json.loads(rest)
        elif keyword == "HEALTHCHECK":
            options, _, command = rest.partition("CMD ")
            stage.healthcheck = (json.loads(command), options.strip())
        elif keyword == "EXPOSE":
            stage.expose += rest.split()
        elif keyword in ("COPY", "RUN"):
            stage.steps.append((keyword, rest))
    return stages
