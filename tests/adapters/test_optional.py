from __future__ import annotations

import subprocess
import sys
from types import ModuleType

import pytest

from gcl.adapters import _optional
from gcl.adapters._optional import require


def test_missing_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> ModuleType:
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(_optional.importlib, "import_module", missing)
    with pytest.raises(ImportError, match=r"kornia is required for gcl.adapters.image; .*pip install -e '\.\[image\]'` from the gcl repository"):
        require("kornia.augmentation", "image")


def test_importing_the_adapters_loads_no_optional_package() -> None:
    code = (
        "import sys, gcl.adapters.image, gcl.adapters.text, gcl.adapters.video; "
        "print(sorted(m for m in ('kornia', 'transformers', 'torch_geometric') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
