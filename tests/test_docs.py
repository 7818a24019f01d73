r"""The Python examples of README.md and docs/*.md run as written.

Every fenced ``python`` block is one test. A page states what its fragments
assume (``z1``, ``loader`` …) in hidden set-up comments, which run before
every block that follows them on the page::

    <!-- docs-test setup
    import torch
    z1, z2 = torch.randn(32, 16), torch.randn(32, 16)
    -->

``<!-- docs-test skip: reason -->`` right before a block skips it (a download,
several processes); ``<!-- docs-test cuda -->`` runs it only where CUDA is. Blocks written as interactive sessions
(``>>>``) are checked by :mod:`doctest`. Each block runs in a temporary
working directory, so examples that write files leave the repository as it
was.
"""

from __future__ import annotations

import doctest
import re
import runpy
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
_SETUP = re.compile(r"<!-- docs-test setup\n(.*?)^-->", re.S | re.M)
_SKIP = re.compile(r"<!-- docs-test (?:skip: (.*?)|(cuda)) -->\s*\Z")


@dataclass
class Example:
    page: Path
    line: int
    code: str
    setup: str
    skip: str | None

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def examples(page: Path) -> list[Example]:
    r"""The python blocks of ``page`` with the set-up that precedes each and its skip reason."""
    text = page.read_text()
    found = []
    for match in _FENCE.finditer(text):
        before = text[:match.start()]
        setup = "\n".join(s.group(1) for s in _SETUP.finditer(before))
        marker = _SKIP.search(before)
        skip = None
        if marker and marker.group(2):
            skip = None if torch.cuda.is_available() else "needs CUDA"
        elif marker:
            skip = marker.group(1)
        found.append(Example(page, before.count("\n") + 1, match.group(1), setup, skip))
    return found


ALL = [example for page in PAGES for example in examples(page)]


def test_every_page_is_collected() -> None:
    assert len(ALL) >= 20
    assert {example.page.name for example in ALL} >= {"README.md", "losses.md", "augmentations.md", "methods.md"}


def test_setup_and_skip_are_parsed(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("<!-- docs-test setup\nx = 1\n-->\n\n```python\nassert x == 1\n```\n\n"
                    "<!-- docs-test skip: a download -->\n```python\nraise SystemExit\n```\n"
                    "<!-- docs-test cuda -->\n```python\nimport torch\n```\n")
    first, second, third = examples(page)
    assert (first.setup.strip(), first.skip, first.line) == ("x = 1", None, 5)
    assert second.skip == "a download"
    assert third.skip == (None if torch.cuda.is_available() else "needs CUDA")


@pytest.mark.parametrize("example", ALL, ids=[example.id for example in ALL])
def test_example_runs(example: Example, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if example.skip:
        pytest.skip(example.skip)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GCL_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    namespace: dict[str, object] = {"__name__": "__docs__", "ROOT": ROOT}
    exec(compile(example.setup, f"{example.id} (set-up)", "exec"), namespace)
    if example.code.lstrip().startswith(">>>"):
        parser = doctest.DocTestParser()
        test = parser.get_doctest(example.code, namespace, example.id, str(example.page), example.line)
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        runner.run(test, clear_globs=False)
        assert runner.failures == 0, f"{example.id}: {runner.failures} of {runner.tries} doctest lines failed"
    else:
        exec(compile(example.code, example.id, "exec"), namespace)


SCRIPTS = {  # arguments, and what the printed result names
    "image_digits.py": (["--epochs", "1"], "probe acc."),
    "video_moving_digits.py": (["--epochs", "1", "--train-clips", "128", "--test-clips", "100"], '"digit_probe"'),
    "text_simcse.py": (["--epochs", "1", "--train-sentences", "16"], '"spearman_after"'),
}


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_example_script_runs(script: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    r"""``docs/examples/*.py`` run end to end (one epoch on a slice of their data)."""
    pytest.importorskip("kornia")
    if script.startswith("text"):
        pytest.importorskip("transformers")
    path = ROOT / "docs" / "examples" / script
    monkeypatch.chdir(tmp_path)
    arguments, result = SCRIPTS[script]
    monkeypatch.setattr(sys, "argv", [str(path), *arguments, "--seed", "0"])
    runpy.run_path(str(path), run_name="__main__")
    assert result in capsys.readouterr().out


def test_every_example_script_is_run() -> None:
    assert {path.name for path in (ROOT / "docs" / "examples").glob("*.py")} == set(SCRIPTS)
