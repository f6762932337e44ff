"""compose.yaml as Docker Compose resolves it: variable interpolation, profiles, the demo's values.

Compose interpolates every string of the file from the environment (and `.env`): `$$` is a
literal `$`; `$NAME` and `${NAME}` the value or ""; `${NAME:-default}` / `${NAME-default}` the
default when the variable is unset or empty / unset, the default itself interpolated;
`${NAME:?message}` / `${NAME?message}` an error; `${NAME:+other}` / `${NAME+other}` the other
value when set. `resolve` does the same so that a test can start Compose with any environment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from deploy_support import COMPOSE, ROOT, load_yaml

DEMO_ENV = ROOT / "infra" / "demo" / "demo.env"
GUARD = ROOT / "infra" / "demo" / "guard.sh"
#: How compose.yaml starts a container through the demo's guard.
GUARD_ENTRYPOINT = ["/bin/sh", "/run/zakaz/demo/guard.sh"]
GUARD_MOUNT = "./infra/demo:/run/zakaz/demo:ro"

_NAME = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")
_BRACED = re.compile(r"(?P<name>[_A-Za-z][_A-Za-z0-9]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?", re.DOTALL)


class InterpolationError(ValueError):
    """A required variable is missing, or a `$` that starts no variable."""


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """One string as Compose interpolates it."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] != "$":
            out.append(text[i])
            i += 1
            continue
        following = text[i + 1 : i + 2]
        if following == "$":
            out.append("$")
            i += 2
        elif following == "{":
            end = _closing_brace(text, i)
            out.append(_braced(text[i + 2 : end], env, text))
            i = end + 1
        elif match := _NAME.match(text, i + 1):
            out.append(env.get(match.group(), ""))
            i = match.end()
        else:
            raise InterpolationError(f"invalid interpolation in {text!r}")
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    depth = 0
    i = start
    while i < len(text):
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise InterpolationError(f"unclosed ${{ in {text!r}")


def _braced(expr: str, env: Mapping[str, str], text: str) -> str:
    match = _BRACED.fullmatch(expr)
    if match is None:
        raise InterpolationError(f"invalid interpolation ${{{expr}}} in {text!r}")
    name, op, arg = match.group("name"), match.group("op"), match.group("arg") or ""
    value = env.get(name)
    present, filled = value is not None, bool(value)
    if op is None:
        return value or ""
    if op in {":-", "-"}:
        return value if (filled if op == ":-" else present) else interpolate(arg, env)  # type: ignore[return-value]
    if op in {":?", "?"}:
        if not (filled if op == ":?" else present):
            raise InterpolationError(f"required variable {name} is missing a value: {arg}")
        return value  # type: ignore[return-value]
    return interpolate(arg, env) if (filled if op == ":+" else present) else ""


def resolve(env: Mapping[str, str]) -> dict[str, Any]:
    """compose.yaml with every string interpolated from `env` (nothing else: no `.env` file)."""

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return interpolate(node, env)
        if isinstance(node, list):
            return [walk(item) for item in node]
        if isinstance(node, dict):
            return {key: walk(value) for key, value in node.items()}
        return node

    spec: dict[str, Any] = walk(load_yaml(COMPOSE))
    return spec


def active(spec: Mapping[str, Any], *profiles: str) -> dict[str, dict[str, Any]]:
    """The services `docker compose --profile P ... up` starts: no profile, or one of those."""
    return {
        name: service
        for name, service in spec["services"].items()
        if not service.get("profiles") or set(service["profiles"]) & set(profiles)
    }


def demo_values() -> dict[str, str]:
    """infra/demo/demo.env: each platform setting's demo value."""
    values = {}
    for line in DEMO_ENV.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    return values


def holds_demo_value(service: Mapping[str, Any]) -> list[str]:
    """The environment entries of a resolved service that hold a demo value."""
    demo = set(demo_values().values())
    return sorted(k for k, v in (service.get("environment") or {}).items() if str(v) in demo)
