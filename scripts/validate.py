#!/usr/bin/env python3
"""Validates NDJSON lines against a roas JSON Schema (draft 2020-12).

    python3 scripts/validate.py SCHEMA FILE [--expect valid|invalid] [--quiet]

Every non-blank line of FILE ("-" for stdin) is parsed as strict JSON (NaN, Infinity and
-Infinity are errors, as in roas) and validated with jsonschema's Draft202012Validator and a
FormatChecker. With --expect valid (the default) every line must be valid; with --expect invalid
every line must be rejected (to check that a schema really catches what it should).

Exit status: 0 when every line met the expectation, 1 when some did not (each is printed as
FILE:LINE: ...), 2 on a usage error or an unreadable file or schema, 3 when a Python package is
missing (CI installs it: python3 -m pip install -r scripts/requirements.txt).
"""
import argparse
import json
import sys

try:
    import jsonschema
    from jsonschema import Draft202012Validator, FormatChecker
except ImportError as error:  # pragma: no cover - depends on the environment
    print(f"validate.py: the Python package jsonschema is missing ({error}); "
          "install it with: python3 -m pip install -r scripts/requirements.txt", file=sys.stderr)
    sys.exit(3)


def strict_constant(name):
    raise ValueError(f"{name} is not valid JSON (RFC 8259)")


def sibling_registry(schema_path):
    """The schemas next to SCHEMA, by their $id, so that a $ref such as "row.schema.json" resolves
    offline against the schema's own $id."""
    import os
    from referencing import Registry, Resource
    resources = []
    folder = os.path.dirname(os.path.abspath(schema_path))
    for name in sorted(os.listdir(folder)):
        if name.endswith(".schema.json"):
            with open(os.path.join(folder, name), "rb") as handle:
                contents = json.load(handle)
            if "$id" in contents:
                resources.append((contents["$id"], Resource.from_contents(contents)))
    return Registry().with_resources(resources)


def load_line(text):
    return json.loads(text, parse_constant=strict_constant)


def main():
    parser = argparse.ArgumentParser(description="Validate NDJSON lines against a JSON Schema.")
    parser.add_argument("schema", help="path of the JSON Schema")
    parser.add_argument("file", help="NDJSON file to validate, or - for stdin")
    parser.add_argument("--expect", choices=["valid", "invalid"], default="valid",
                        help="whether every line must be valid (default) or every line invalid")
    parser.add_argument("--quiet", action="store_true", help="print only failures")
    arguments = parser.parse_args()

    try:
        with open(arguments.schema, "rb") as handle:
            schema = json.load(handle)
        Draft202012Validator.check_schema(schema)
    except (OSError, ValueError, jsonschema.SchemaError) as error:
        print(f"validate.py: cannot use the schema {arguments.schema}: {error}", file=sys.stderr)
        return 2
    validator = Draft202012Validator(
        schema, format_checker=FormatChecker(), registry=sibling_registry(arguments.schema))

    try:
        if arguments.file == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(arguments.file, "rb") as handle:
                data = handle.read()
    except OSError as error:
        print(f"validate.py: cannot read {arguments.file}: {error}", file=sys.stderr)
        return 2

    name = arguments.file
    checked = 0
    failures = 0
    for number, raw in enumerate(data.split(b"\n"), start=1):
        line = raw.rstrip(b"\r")
        if not line.strip(b" \t"):
            continue
        checked += 1
        problems = []
        try:
            instance = load_line(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as error:
            problems.append(f"not valid JSON: {error}")
        else:
            for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path)):
                where = "/".join(str(part) for part in error.absolute_path) or "(root)"
                problems.append(f"{where}: {error.message}")
        text = line.decode("utf-8", errors="replace")
        if arguments.expect == "valid" and problems:
            failures += 1
            for problem in problems:
                print(f"{name}:{number}: {problem}    line: {text}")
        elif arguments.expect == "invalid" and not problems:
            failures += 1
            print(f"{name}:{number}: valid, but expected the schema to reject it    line: {text}")
        elif not arguments.quiet and arguments.expect == "invalid":
            print(f"{name}:{number}: rejected as expected: {problems[0]}")

    if checked == 0:
        print(f"validate.py: {name} holds no line to validate", file=sys.stderr)
        return 2
    verdict = "valid" if arguments.expect == "valid" else "rejected"
    if failures:
        print(f"{name}: {failures} of {checked} lines not {verdict} by {arguments.schema}")
        return 1
    if not arguments.quiet:
        print(f"{name}: all {checked} lines {verdict} by {arguments.schema}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
