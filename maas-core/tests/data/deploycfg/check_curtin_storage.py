"""Check curtin storage configs (JSON files, each `{version: 1, config: [...]}`)
against curtin's per-action schema (curtin-storage-schema.json) and the
reference rules curtin's block-meta relies on: ids unique, every reference
names an action defined earlier. Exit 0 when all pass; print every problem
and exit 1 otherwise.

Usage: python3 check_curtin_storage.py SCHEMA.json CONFIG.json...
"""
import json
import sys

import jsonschema

REFS = {
    "partition": ["device"],
    "format": ["volume"],
    "mount": ["device"],
    "lvm_volgroup": ["devices"],
    "lvm_partition": ["volgroup"],
    "raid": ["devices", "spare_devices"],
    "bcache": ["backing_device", "cache_device"],
}


def main():
    schema = json.load(open(sys.argv[1]))
    problems = []
    for path in sys.argv[2:]:
        doc = json.load(open(path))
        if doc.get("version") != 1 or not isinstance(doc.get("config"), list):
            problems.append(f"{path}: not a version 1 storage config")
            continue
        seen = set()
        for i, action in enumerate(doc["config"]):
            kind = action.get("type")
            where = f"{path}: config[{i}] ({action.get('id')!r}, {kind})"
            rules = schema["types"].get(kind)
            if rules is None:
                problems.append(f"{where}: unknown action type")
                continue
            full = dict(rules, definitions=schema["definitions"])
            v = jsonschema.Draft7Validator(full)
            for err in v.iter_errors(action):
                problems.append(f"{where}: {err.message}")
            for key in REFS.get(kind, []):
                val = action.get(key)
                refs = val if isinstance(val, list) else [val] if val is not None else []
                for r in refs:
                    if r not in seen:
                        problems.append(f"{where}: {key} {r!r} is not defined before it")
            if action.get("id") in seen:
                problems.append(f"{where}: duplicate id")
            seen.add(action.get("id"))
    for p in problems:
        print(p)
    print(f"checked {len(sys.argv) - 2} storage configs, {len(problems)} problems")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
