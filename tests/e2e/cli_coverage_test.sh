#!/usr/bin/env bash
# CLI completeness: every operation of docs/api/openapi.json is named in the command table of
# docs/cli.md, and every command that table names exists in the built `vouch` and accepts -o json.
# Operations that other binaries call (node agents, `vouchd join`) are listed in docs/cli.md's
# "Operations served to other binaries" paragraph; agent-only ones not yet listed there are
# recognised by their description (mutual TLS, join token) and reported.
# Usage: cli_coverage_test.sh VOUCH SOURCE_DIR
source "$(dirname "$0")/lib.sh"
VOUCH=$1
SRC=$2
python3 - "$SRC" >"$E2E_TMP/plan" <<'PY' || fail "docs/cli.md does not cover docs/api/openapi.json"
import json, re, sys
src = sys.argv[1]
doc = json.load(open(f"{src}/docs/api/openapi.json"))
cli = open(f"{src}/docs/cli.md").read()
rows = [l for l in cli.splitlines() if l.startswith("| `")]
covered, commands = set(), set()
for row in rows:
    cells = row.split(" | ")
    if len(cells) < 2:
        continue
    for call in re.findall(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`?: ]*)", cells[1]):
        covered.add(call)
    for cmd in re.findall(r"`([a-z][a-z -]*)", cells[0]):
        words = [w for w in cmd.split() if re.fullmatch(r"[a-z][a-z-]*", w)]
        if words:
            commands.add(" ".join(words))
# "Operations served to other binaries, not to `vouch`: `POST /nodes`, ..." (one paragraph).
others = re.search(r"Operations served to other binaries.*?\n\n", cli, re.S)
for call in re.findall(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`?: ]*)`", others.group(0) if others else ""):
    covered.add(call)
missing = []
for path, item in doc["paths"].items():
    for method, op in item.items():
        if method not in ("get", "post", "put", "patch", "delete"):
            continue
        desc = op.get("description", "")
        agent_only = ("mutual TLS" in desc and "admin" not in desc) or "join token in the body" in desc \
            or path == "/api/v1/nodes/nonce"
        short = path[len("/api/v1"):] if path.startswith("/api/v1/") else path
        if (method.upper(), short) in covered or (method.upper(), path) in covered:
            continue
        if agent_only:
            print(f"agent {method.upper()} {path}")
            continue
        missing.append(f"{method.upper()} {path}")
if missing:
    print("no CLI command documented for: " + ", ".join(missing), file=sys.stderr)
    sys.exit(1)
print(f"ops {sum(1 for p in doc['paths'].values() for m in p if m in ('get','post','put','patch','delete'))}")
for c in sorted(commands):
    print("cmd " + c)
PY
ok "$(grep -c '^cmd ' "$E2E_TMP/plan") documented commands cover every non-agent operation of $(sed -n 's/^ops //p' "$E2E_TMP/plan") in openapi.json"
grep '^agent ' "$E2E_TMP/plan" | sed 's/^agent /  served by vouch-agent: /'
n=0
while read -r kind cmd; do
  [[ $kind == cmd ]] || continue
  # shellcheck disable=SC2086
  help=$("$VOUCH" $cmd --help 2>&1) || fail "vouch $cmd --help failed: ${help:0:200}"
  # CLI11 prints the nearest existing command's help for an unknown one: check the usage line.
  grep -q "^Usage: .*vouch $cmd \[OPTIONS\]" <<<"$help" || fail "vouch $cmd: no such command (help: ${help:0:120})"
  # -o json is global: it must parse with every command.
  # shellcheck disable=SC2086
  "$VOUCH" $cmd -o json --help >/dev/null 2>&1 || fail "vouch $cmd does not accept -o json"
  n=$((n + 1))
done <"$E2E_TMP/plan"
ok "all $n documented commands exist in the vouch binary and accept -o json"
