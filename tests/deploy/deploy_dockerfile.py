"""Just enough of the Dockerfile and .dockerignore formats to check and replay our images' builds."""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Instruction:
    """One instruction: its keyword, its flags (`--from=uv`) and its arguments."""

    keyword: str
    flags: dict[str, str]
    args: str

    @property
    def words(self) -> list[str]:
        """The arguments split as a shell would, or as the JSON form lists them."""
        text = self.args.strip()
        if text.startswith("["):
            return [w.strip().strip('"') for w in text.strip("[]").split(",")]
        return shlex.split(text)


@dataclass
class Stage:
    """A build stage: `FROM image [AS name]` and what follows it."""

    image: str
    name: str
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        """This stage's instructions of one kind, in order."""
        return [i for i in self.instructions if i.keyword == keyword]


def parse(path: Path) -> list[Stage]:
    """The stages of a Dockerfile (line continuations joined, comments dropped)."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        flags: dict[str, str] = {}
        rest = rest.strip()
        while rest.startswith("--"):
            flag, _, rest = rest.partition(" ")
            name, _, value = flag[2:].partition("=")
            flags[name] = value
            rest = rest.strip()
        instruction = Instruction(keyword.upper(), flags, rest)
        if instruction.keyword == "FROM":
            words = rest.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else ""
            stages.append(Stage(words[0], name))
        elif stages:
            stages[-1].instructions.append(instruction)
    return stages


def _pattern(glob: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif glob.startswith("**", i):
            out += ".*"
            i += 2
        elif glob[i] == "*":
            out += "[^/]*"
            i += 1
        elif glob[i] == "?":
            out += "[^/]"
            i += 1
        elif glob[i] == "[":
            end = glob.index("]", i)
            out += glob[i : end + 1]
            i = end + 1
        else:
            out += re.escape(glob[i])
            i += 1
    return re.compile(out + "$")


#: Directories never walked when listing a context (checked separately to be ignored).
UNWALKED = {
    ".git",
    ".venv",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    "node_modules",
}


class DockerIgnore:
    """The rules of a .dockerignore: a path is excluded by the last rule matching it or a parent."""

    def __init__(self, path: Path) -> None:
        self.rules: list[tuple[bool, re.Pattern[str]]] = []
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            glob = line[1:] if negate else line
            self.rules.append((negate, _pattern(glob.strip("/"))))

    def ignored(self, rel: str) -> bool:
        """Whether the context path `rel` (posix, relative to the root) stays out of the build."""
        parts = rel.strip("/").split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        excluded = False
        for negate, pattern in self.rules:
            if any(pattern.match(p) for p in prefixes):
                excluded = not negate
        return excluded

    def context(self, root: Path) -> list[str]:
        """The files of the build context at `root`, relative and sorted."""
        kept = []
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d not in UNWALKED)
            for name in files:
                rel = (Path(folder) / name).relative_to(root).as_posix()
                if not self.ignored(rel):
                    kept.append(rel)
        return sorted(kept)
