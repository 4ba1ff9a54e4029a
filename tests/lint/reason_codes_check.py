#!/usr/bin/env python3
"""Reason codes are named constants (issue 17; libs/api/reasons.h).

In the non-test sources of the libraries that decide the API's answers (CHECKED_DIRS), the reason
code of an error (the last argument of InvalidArgument/PermissionDenied/NotFound/..., Status(...)
or Refuse(...), or the first of Refuse(code, message)) must be a named constant, never a bare string
literal such as "invalid_name": the codes are a contract with clients, written down once, in the
library that decides (libs/api/reasons.h, store/reasons.h, pki/reasons.h, cluster/reasons.h,
policy.h, collateral/service.h). Also checks that libs/api/reasons.h gives each code one constant.
Usage: reason_codes_check.py ROOT         check the tree
       reason_codes_check.py --self-test  prove that a bare literal and a duplicate fail
"""
import pathlib
import re
import sys
import tempfile

CHECKED_DIRS = ("libs/api", "libs/pki", "libs/store", "libs/policy", "libs/cluster", "libs/collateral",
                "apps/vouchd")
ERROR_FUNCS = {
    "InvalidArgument", "PermissionDenied", "NotFound", "AlreadyExists", "FailedPrecondition",
    "Unauthenticated", "OutOfRange", "ResourceExhausted", "Unavailable", "Aborted", "Unimplemented",
    "DataLoss", "Internal", "Status", "Refuse",
}
CODE = re.compile(r'"([a-z][a-z0-9_]*)"')


def strip_comments(text: str) -> str:
    """Blanks // and /* */ comments (keeping offsets and newlines), leaving string literals."""
    out, i, n = list(text), 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                out[i] = " "
                i += 1
        elif text.startswith("/*", i):
            while i < n and not text.startswith("*/", i):
                if text[i] != "\n":
                    out[i] = " "
                i += 1
            out[i:i + 2] = "  "
            i += 1
        i += 1
    return "".join(out)


def enclosing_call(text: str, pos: int) -> tuple:
    """(function name, offset of its '(') of the innermost call around `pos`, or ("", -1)."""
    depth, in_str, i = 0, False, pos - 1
    while i >= 0:
        c = text[i]
        if c == '"' and text[i - 1] != "\\":
            in_str = not in_str
        elif not in_str:
            if c == ")":
                depth += 1
            elif c == "(":
                if depth == 0:
                    m = re.search(r"([A-Za-z_][\w:]*)\s*$", text[:i])
                    return (m.group(1).split("::")[-1] if m else "", i)
                depth -= 1
        i -= 1
    return ("", -1)


def bare_reasons(text: str) -> list:
    """(line, function, code) of each reason code written as a literal."""
    text = strip_comments(text)
    found = []
    for m in CODE.finditer(text):
        fn, _ = enclosing_call(text, m.start())
        if fn not in ERROR_FUNCS:
            continue
        before = text[:m.start()].rstrip()
        last_arg = before.endswith(",") and re.match(r"\s*\)", text[m.end():])
        refuse_code = fn == "Refuse" and before.endswith("(")
        if last_arg or refuse_code:
            found.append((text.count("\n", 0, m.start()) + 1, fn, m.group(1)))
    return found


def check(root: pathlib.Path) -> list:
    problems = []
    for d in CHECKED_DIRS:
        if not (root / d).is_dir():
            continue
        for src in sorted((root / d).glob("*.cc")):
            if src.stem.endswith(("_test", "_fuzz")) or not src.is_file():
                continue
            for line, fn, code in bare_reasons(src.read_text()):
                problems.append(f'{src.relative_to(root)}:{line}: {fn}(..., "{code}"): use a named constant '
                                f"(libs/api/reasons.h, or the deciding library's)")
    reasons = root / "libs/api/reasons.h"
    if reasons.exists():
        seen = {}
        for name, value in re.findall(r'constexpr std::string_view (k\w+) = "([^"]*)"', reasons.read_text()):
            if value in seen:
                problems.append(f'libs/api/reasons.h: "{value}" is both {seen[value]} and {name}')
            seen[value] = name
    else:
        problems.append("libs/api/reasons.h is missing")
    return problems


def self_test() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        (root / "libs/api").mkdir(parents=True)
        (root / "libs/api/reasons.h").write_text('inline constexpr std::string_view kA = "a_code";\n')
        good = ('Status F() {\n  // InvalidArgument("m", "in_comment")\n'
                '  return InvalidArgument("the \\"x\\" is bad (" + Name("not_a_reason") + ")", std::string(kA));\n}\n')
        (root / "libs/api/ok.cc").write_text(good)
        (root / "libs/api/ok_test.cc").write_text('auto s = NotFound("m", "fine_in_tests");\n')
        if check(root):
            print("self-test: a clean tree was flagged:", check(root))
            return 1
        (root / "libs/api/bad.cc").write_text(
            'Status G() {\n  return PermissionDenied("m" + std::to_string(f(1)),\n'
            '                          "bare_code");\n}\nStatus H() { return Refuse("other_code", "a message"); }\n')
        (root / "libs/api/reasons.h").write_text('inline constexpr std::string_view kA = "a_code";\n'
                                                 'inline constexpr std::string_view kB = "a_code";\n')
        problems = check(root)
        want = ['bad.cc:3: PermissionDenied(..., "bare_code")', 'bad.cc:5: Refuse(..., "other_code")',
                '"a_code" is both kA and kB']
        missing = [w for w in want if not any(w in p for p in problems)]
        if missing or len(problems) != len(want):
            print("self-test: expected", want, "got", problems)
            return 1
    print("self-test: ok")
    return 0


def main() -> int:
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    problems = check(pathlib.Path(sys.argv[1]))
    for p in problems:
        print(p)
    if not problems:
        print("reason codes: ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
