"""Record what saved workflows depend on in every node of this pack: tests/data/widget_order.json.

    .venv/bin/python tools/snapshot_widgets.py

For each node: its widgets in order (their values are saved by position), its link-only inputs, and its
outputs in order (links are saved by output index). The snapshot only ever grows: a new node is added, and
widgets or outputs appended to a node extend its entry. A change that would break saved workflows (a
widget moved, renamed, retyped or removed, an output reordered, a node gone) is refused; the tests
(tests/comfy/test_workflows.py) refuse it too. See CONTRIBUTING.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]

from live import object_info as live_object_info  # noqa: E402

from hierafash_cli.workflow import pack_nodes  # noqa: E402
from hierafash_cli.workflow_compat import compatibility_problems, schema_summary  # noqa: E402

SNAPSHOT = ROOT / "tests" / "data" / "widget_order.json"


def dump(snapshot: dict) -> str:
    """JSON with one line per field, so a diff shows exactly which node and field changed."""
    nodes = []
    for node_id, summary in sorted(snapshot.items()):
        fields = ",\n".join(f"    {json.dumps(key)}: {json.dumps(value)}" for key, value in summary.items())
        nodes.append(f"  {json.dumps(node_id)}: {{\n{fields}\n  }}")
    return "{\n" + ",\n".join(nodes) + "\n}\n"


def main() -> int:
    old = json.loads(SNAPSHOT.read_text()) if SNAPSHOT.exists() else {}
    live = {name: schema_summary(info) for name, info in sorted(pack_nodes(live_object_info()).items())}
    problems = compatibility_problems(old, live)
    if problems:
        print("refusing to update the snapshot: these changes break saved workflows\n  " + "\n  ".join(problems))
        return 1
    new = {**old, **live}
    SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
    SNAPSHOT.write_text(dump(new))
    added = sorted(set(live) - set(old))
    grown = sorted(n for n in set(live) & set(old) if live[n] != old[n])
    print(f"wrote {SNAPSHOT.relative_to(ROOT)}: {len(new)} nodes; added {added or 'none'}; extended {grown or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
