#!/usr/bin/env python3
"""Prints the README configuration table from packages/shared/src/config/env.ts (JSDoc + defaults).
Run after changing env.ts: python3 scripts/env-table.py > /tmp/t.md, then paste into README.md.
test/docs.test.ts fails when a variable is missing from README.md."""
import re
s = open("packages/shared/src/config/env.ts").read()
body = s[s.index("export const Env = z"):s.index(".superRefine")]
rows = re.findall(r"((?:\s*/\*\*[\s\S]*?\*/)?)\s*\n\s*([A-Z_][A-Z0-9_]+):\s*([^\n]+(?:\n(?!\s*(?:/\*\*|[A-Z_]+:))[^\n]*)*)", body)
print("| Variable | Default | Meaning |")
print("|---|---|---|")
for doc, key, val in rows:
    d = re.sub(r"/\*\*|\*/", "", doc)
    d = " ".join(line.strip().lstrip("*").strip() for line in d.splitlines()).strip()
    default = ""
    m = re.search(r"@defaultValue\s+(.+)$", d)
    if m:
        default = m.group(1).strip()
        d = d[: m.start()].strip()
    else:
        m2 = re.search(r"Int\(([^,)]+)", val) or re.search(r"\.default\(([^)]*)\)", val)
        if m2:
            default = m2.group(1).strip()
    if not default:
        default = "unset"
    default = default.replace("_", "")  if re.fullmatch(r"[\d_]+", default) else default
    d = d.replace("|", "\\|")
    print(f"| `{key}` | {default.replace('|', '/')} | {d} |")
