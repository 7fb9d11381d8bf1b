"""The README's examples run as a new user would paste them.

Every ```python block that starts with an import is a whole program; it runs here in an
empty folder (the figures and files it writes land there). Blocks that are fragments of
the text around them (a device example needs a GPU, a line showing one call) do not start
with an import and are left out; the count below notices a block that silently stops
being checked.
"""
import contextlib
import io
import re
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
PROGRAMS = [b for b in BLOCKS if b.lstrip().startswith(("import ", "from "))]


def first_line(block):
    return next(line for line in block.splitlines() if line.strip() and
                not line.startswith(("import ", "from ")))[:60]


def test_the_readme_has_its_example_programs():
    assert len(PROGRAMS) >= 5, "a README example lost its imports, or the README lost one"


@pytest.mark.parametrize("program", PROGRAMS, ids=[first_line(b) for b in PROGRAMS])
def test_readme_example_runs(program, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(program, f"README.md example: {first_line(program)}", "exec"), {})
    finally:
        plt.close("all")
