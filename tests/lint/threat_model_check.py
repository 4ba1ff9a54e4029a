#!/usr/bin/env python3
"""Every test docs/threat-model.md names exists: GoogleTest names (Suite.Name, Suite.*) in some
*_test.cc, and e2e checks ("text" after a `ctest-name`) in that test's script. Usage: ROOT"""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1])
doc = (root / "docs/threat-model.md").read_text()
sources = "\n".join(p.read_text() for p in root.glob("libs/**/*_test.cc"))
tests = set(re.findall(r"^(?:TEST|TEST_F|TEST_P)\((\w+),\s*(\w+)\)", sources, re.M))
suites = {s for s, _ in tests}
# Parameterised suites are instantiated with a prefix (Backends/StoreTest).
e2e = {p.name[: -len("_test.sh")]: p.read_text() for p in (root / "tests/e2e").glob("*_test.sh")}
e2e["console"] = (root / "ui/tests/ui_test.mjs").read_text()

passed = failed = 0


def check(what, cond):
    global passed, failed
    print(("ok - " if cond else "not ok - ") + what)
    if cond:
        passed += 1
    else:
        failed += 1


rows = [l for l in doc.splitlines() if l.startswith("| ") and not l.startswith("| what") and "---" not in l]
for row in rows:
    cell = row.rstrip(" |").rsplit(" | ", 1)[-1]
    for prefix, suite, name in re.findall(r"(?<![\w/.])(\w+/)?([A-Z]\w+)\.(\*|[A-Z]\w+)\b", cell):
        label = f"{prefix}{suite}.{name}"
        if name == "*":
            check(f"{label} names an existing suite", suite in suites)
        else:
            check(f"{label} exists", (suite, name) in tests)
    # `e2e.x` "check text" pairs: each quoted text (up to a … placeholder) is in that script.
    for test, quoted in re.findall(r"`(?:e2e|ui)\.(\w+)`((?:\s*(?:\"[^\"]*\"|and|,|/|\([^)]*\))\s*)+)", cell):
        script = e2e.get(test)
        check(f"e2e test {test} exists", script is not None)
        if script is None:
            continue
        for text in re.findall(r"\"([^\"]*)\"", quoted):
            piece = max(re.split(r"…", text), key=len).strip()
            # A check made by a helper function reads "$1: …" in the script ("preload: …" here).
            generic = re.sub(r"^[\w-]+: ", "$1: ", piece)
            check(f"{test}: check text '{piece}' is in its script", piece in script or generic in script)
print(f"{passed} passed, {failed} failed")
sys.exit(0 if failed == 0 and passed > 0 else 1)
