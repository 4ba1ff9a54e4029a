#!/usr/bin/env python3
"""The library dependency graph as written, checked against the code (issue 17).

For every libs/<lib>:
  1. README.md has a "May use:" sentence; the vouch libraries it names are exactly the vouch::
     DEPS of vouch_library() in CMakeLists.txt (the graph is written down once and kept true);
  2. every #include "<other>/..." in its non-test sources names <lib> itself or a library it
     links, directly or through another library it links (a header of a library you do not
     depend on is a missing dependency, even when the include path happens to find it);
  3. every third-party header family it includes (<openssl/...>, <curl/...>, ...) is named in
     "May use:".
Usage: deps_check.py ROOT            check the tree
       deps_check.py --self-test     prove that a stray include and a README mismatch fail
"""
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

THIRD_PARTY = {  # include prefix -> words one of which "May use:" must contain
    "openssl/": ("openssl",),
    "curl/": ("libcurl", "curl"),
    "boost/": ("boost",),
    "sqlite3.h": ("sqlite",),
    "libpq-fe.h": ("libpq",),
    "archive": ("libarchive", "archive"),
    "nlohmann/": ("nlohmann",),
    "spdlog/": ("spdlog",),
    "fmt/": ("fmt", "spdlog"),
}


def may_use(readme: str):
    m = re.search(r"May use:(.*?)(?:\.\s|\.$|\n\n)", readme, re.S | re.I)
    return m.group(1) if m else None


def check(root: pathlib.Path) -> list:
    libs = sorted(p.name for p in (root / "libs").iterdir() if (p / "CMakeLists.txt").exists())
    deps = {}
    for lib in libs:
        cmake = (root / "libs" / lib / "CMakeLists.txt").read_text()
        m = re.search(r"vouch_library\(\s*%s\b(.*?)\)" % re.escape(lib), cmake, re.S)
        deps[lib] = set(re.findall(r"vouch::(\w+)", m.group(1))) - {"libcrypto"} if m else set()
    problems = []

    def closure(lib, seen=None):
        seen = set() if seen is None else seen
        for d in deps.get(lib, ()):
            if d not in seen:
                seen.add(d)
                closure(d, seen)
        return seen

    for lib in libs:
        readme_path = root / "libs" / lib / "README.md"
        text = may_use(readme_path.read_text()) if readme_path.exists() else None
        if text is None:
            problems.append(f"libs/{lib}: README.md has no 'May use:' sentence")
            text = ""
        # Library names outside parentheses (which explain, and may mention others in passing).
        words = {w.lower() for w in re.findall(r"[A-Za-z][\w.+-]*", re.sub(r"\([^)]*\)", "", text))}
        named = {w for w in words if w in libs} - {lib}
        if text and named != deps[lib]:
            problems.append(f"libs/{lib}: README 'May use' names {sorted(named)} but CMake links {sorted(deps[lib])}")
        allowed = closure(lib) | {lib}
        for src in sorted((root / "libs" / lib).glob("*")):
            if src.suffix not in (".cc", ".h") or src.stem.endswith(("_test", "_fuzz")) or src.name == "test_util.h":
                continue
            for inc in re.findall(r'^\s*#\s*include\s+"([\w-]+)/', src.read_text(), re.M):
                if inc in libs and inc not in allowed:
                    problems.append(f"libs/{lib}/{src.name}: includes {inc}/ but {lib} does not depend on {inc}")
            for inc in re.findall(r"^\s*#\s*include\s+<([^>]+)>", src.read_text(), re.M):
                for prefix, names in THIRD_PARTY.items():
                    if inc.startswith(prefix) and text and not any(n in text.lower() for n in names):
                        problems.append(f"libs/{lib}/{src.name}: includes <{inc}> but README 'May use' does not name it")
    return problems


def self_test() -> int:
    root = pathlib.Path(__file__).resolve().parents[2]
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        copy = pathlib.Path(tmp)
        shutil.copytree(root / "libs", copy / "libs", ignore=shutil.ignore_patterns("*_test.cc", "*.o"))
        base = check(copy)
        # A stray include of a library evidence does not depend on.
        (copy / "libs/evidence/stray.cc").write_text('#include "store/database.h"\n')
        found = [p for p in check(copy) if p not in base]
        ok = any("libs/evidence/stray.cc: includes store/" in p for p in found)
        print(("ok" if ok else "not ok") + " - a header of a library not depended on fails the check")
        failed += not ok
        (copy / "libs/evidence/stray.cc").unlink()
        # A README that names a library CMake does not link.
        readme = copy / "libs/manifest/README.md"
        readme.write_text(readme.read_text().replace("May use:", "May use: store,", 1))
        found = [p for p in check(copy) if p not in base]
        ok = any(p.startswith("libs/manifest: README") for p in found)
        print(("ok" if ok else "not ok") + " - a README 'May use' that disagrees with CMake fails the check")
        failed += not ok
    print(f"{2 - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        sys.exit(self_test())
    problems = check(pathlib.Path(sys.argv[1]))
    for p in problems:
        print("not ok - " + p)
    print(f"{0 if problems else 1} passed, {len(problems)} failed")
    sys.exit(1 if problems else 0)
