"""The README's Python snippet and the Python example run as written."""

import pathlib
import re
import runpy

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_readme_snippet_runs():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert blocks, "README has no python snippet"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})


def test_fleet_example_runs(capsys):
    runpy.run_path(str(ROOT / "examples/python/fleet_allocation.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "-> 8cxn3a" in out
    assert "bob release: HTTP 403" in out
