"""`make mutate`: plant each one-line bug of tests/mutations.json in a copy of the tree and check a test catches it.

Each entry names a file, an exact line fragment that must occur there exactly once, its replacement, why the
change matters, and the test files that must catch it (the unit tier by default; name the files that test that
code, so a run takes minutes, not hours). The copy is the working tree as git sees it (tracked and
untracked-not-ignored files); those tests run against it with `-x`. A mutation survives when they all pass.
The command fails on any survivor and on any entry whose fragment no longer matches, so a list gone stale
is seen as surely as a weakened test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTATIONS = ROOT / "tests" / "mutations.json"
DEFAULT_TESTS = ("tests/unit",)


@dataclass(frozen=True)
class Mutation:
    id: str
    file: str
    find: str
    replace: str
    why: str
    tests: tuple[str, ...] = DEFAULT_TESTS


def load(path: Path = MUTATIONS) -> list[Mutation]:
    entries = json.loads(path.read_text())
    mutations = [Mutation(**{**e, "tests": tuple(e.get("tests", DEFAULT_TESTS))}) for e in entries]
    ids = [m.id for m in mutations]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise SystemExit(f"{path}: duplicate ids {duplicates}")
    return mutations


def tree_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         check=True, capture_output=True).stdout
    return [f for f in out.decode().split("\0") if f and (ROOT / f).is_file()]


def copy_tree(files: list[str], dest: Path) -> None:
    for name in files:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)


def plant(tree: Path, mutation: Mutation) -> str | None:
    """Apply the mutation in `tree`; returns why it could not be applied, or None."""
    path = tree / mutation.file
    if not path.is_file():
        return f"{mutation.file} does not exist"
    text = path.read_text()
    count = text.count(mutation.find)
    if count != 1:
        return f"{mutation.find!r} occurs {count} times in {mutation.file} (must be exactly once)"
    path.write_text(text.replace(mutation.find, mutation.replace))
    return None


def run_one(mutation: Mutation, files: list[str], python: str) -> tuple[Mutation, str, float]:
    """'caught', 'SURVIVED' or 'STALE: why', with the seconds it took."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"mutant-{mutation.id}-") as tmp:
        tree = Path(tmp)
        copy_tree(files, tree)
        problem = plant(tree, mutation)
        if problem:
            return mutation, f"STALE: {problem}", time.perf_counter() - start
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
        done = subprocess.run([python, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *mutation.tests],
                              cwd=tree, env=env, capture_output=True, text=True)
    verdict = "caught" if done.returncode != 0 else "SURVIVED"
    return mutation, verdict, time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ids", nargs="*", help="only these mutation ids (default: all)")
    parser.add_argument("--jobs", type=int, default=2, help="mutants tested at once (default 2)")
    parser.add_argument("--python", default=sys.executable, help="the interpreter that runs the tests")
    args = parser.parse_args(argv)
    mutations = [m for m in load() if not args.ids or m.id in args.ids]
    unknown = set(args.ids) - {m.id for m in mutations}
    if unknown:
        print(f"mutate: unknown ids {sorted(unknown)}", file=sys.stderr)
        return 2
    files = tree_files()
    print(f"{len(mutations)} mutations, {args.jobs} at a time")
    failed = 0
    with ThreadPoolExecutor(args.jobs) as pool:
        for mutation, verdict, seconds in pool.map(lambda m: run_one(m, files, args.python), mutations):
            failed += verdict != "caught"
            print(f"{verdict:9.9s} {mutation.id:40s} {seconds:6.1f}s  {mutation.file}: {mutation.why}"
                  if not verdict.startswith("STALE") else f"{verdict}  [{mutation.id}]", flush=True)
    print(f"{len(mutations) - failed} caught, {failed} survived or stale")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
