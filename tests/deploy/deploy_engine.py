"""A ClickHouse engine (chDB) started with zakaz's users.d and access settings, in a child process.

chDB is ClickHouse in-process and always acts as the user `default`; it loads users, profiles,
constraints and grants from a users config merged exactly as the server merges
`/etc/clickhouse-server/users.d/`. To act as `etl_writer` (say), `default` is given that user's
profile and grants, copied from `infra/clickhouse/users.d/zakaz.xml`; the other users stay
defined as written, so `SQL SECURITY DEFINER` views run with their definer's real grants.

Run as a script: `python deploy_engine.py WORKDIR ACT_AS SCENARIO`; prints one JSON object.
One process opens one engine, so every step of a test is its own process.
"""

from __future__ import annotations

import copy
import json
import sys
import traceback
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
USERS_XML = ROOT / "infra" / "clickhouse" / "users.d" / "zakaz.xml"
SERVER_XML = ROOT / "infra" / "clickhouse" / "config.d" / "zakaz.xml"

#: Passwords the users XML reads from the environment (from_env), set for the child process.
PASSWORD_ENV = {
    "CH_ETL_PASSWORD": "etl-pw",
    "CH_DATALENS_PASSWORD": "datalens-pw",
    "CH_BACKUP_PASSWORD": "backup-pw",
}

#: Server settings of config.d that decide access, copied into the engine's config.
ACCESS_SERVER_SETTINGS = (
    "access_control_improvements",
    "ignore_empty_sql_security_in_create_view_query",
)

#: The image's own users.xml, as far as it matters here: a passwordless admin `default`.
_BASE_USERS = """<clickhouse>
  <profiles><default/></profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>::/0</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
      <access_management>1</access_management>
    </default>
  </users>
  <quotas><default/></quotas>
</clickhouse>
"""


def _read(path: Path) -> ET.Element:
    # The repository's own config files, not untrusted input.
    return ET.parse(path).getroot()  # noqa: S314


def engine_config(workdir: Path, act_as: str) -> Path:
    """Write the config of an engine acting as `act_as` (`admin` = the unrestricted default)."""
    conf = workdir / f"conf-{act_as}"
    (conf / "users.d").mkdir(parents=True, exist_ok=True)
    (conf / "users.xml").write_text(_BASE_USERS)
    (conf / "users.d" / "zakaz.xml").write_text(USERS_XML.read_text())
    if act_as != "admin":
        user = _read(USERS_XML).find(f"users/{act_as}")
        if user is None:
            raise SystemExit(f"no user {act_as} in {USERS_XML}")
        act = ET.Element("clickhouse")
        default = ET.SubElement(ET.SubElement(act, "users"), "default")
        for tag in ("profile", "quota"):
            element = user.find(tag)
            if element is not None:
                default.append(copy.deepcopy(element))
        ET.SubElement(default, "access_management").text = "0"
        grants = copy.deepcopy(user.find("grants"))
        if grants is None:
            raise SystemExit(f"user {act_as} has no grants")
        grants.set("replace", "replace")
        default.append(grants)
        ET.ElementTree(act).write(conf / "users.d" / "zz-act-as.xml", encoding="unicode")
    server = ET.Element("clickhouse")
    ET.SubElement(server, "users_config").text = str(conf / "users.xml")
    server_xml = _read(SERVER_XML)
    for tag in ACCESS_SERVER_SETTINGS:
        element = server_xml.find(tag)
        if element is None:
            raise SystemExit(f"{SERVER_XML} has no <{tag}>")
        server.append(copy.deepcopy(element))
    backups = ET.SubElement(server, "backups")
    ET.SubElement(backups, "allowed_path").text = str(workdir / "backups")
    config = conf / "config.xml"
    ET.ElementTree(server).write(config, encoding="unicode")
    return config


def open_wh(workdir: Path, act_as: str, database: str = "zakaz") -> Any:
    """A zakaz `Warehouse` on the engine under `workdir`, acting as `act_as`."""
    import clickhouse_connect
    from zakaz_common.clickhouse import Warehouse

    config = engine_config(workdir, act_as)
    path = workdir / "warehouse"
    path.mkdir(parents=True, exist_ok=True)
    (workdir / "backups").mkdir(exist_ok=True)
    options = {"config-file": str(config)}
    boot = clickhouse_connect.get_client(dsn=f"chdb://{path}", chdb_options=options)
    try:
        boot.command(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    except Exception as exc:  # a restricted user may not; the database then exists already
        if "ACCESS_DENIED" not in str(exc):
            raise
    client = clickhouse_connect.get_client(
        dsn=f"chdb://{path}", chdb_options=options, database=database
    )
    return Warehouse(client=client, database=database, dsn=f"chdb://{path}", embedded=True)


def attempt(fn: Callable[[], Any]) -> dict[str, Any]:
    """Run one statement: `{"ok": True, "value": …}` or `{"ok": False, "error": …}`."""
    try:
        value = fn()
    except Exception as exc:
        return {"ok": False, "error": str(exc).splitlines()[0][:400]}
    return {"ok": True, "value": value}


def main() -> None:
    """Entry point: run the named scenario of `deploy_scenarios.py` and print its JSON result."""
    workdir, act_as, scenario = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    sys.path.insert(0, str(Path(__file__).parent))
    import deploy_scenarios as scenarios

    try:
        result = getattr(scenarios, scenario)(workdir, act_as)
    except Exception:
        result = {"crashed": traceback.format_exc()}
    sys.stdout.write(json.dumps(result, default=str) + "\n")


if __name__ == "__main__":
    main()
