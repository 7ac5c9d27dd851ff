import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

from docs_targets import render  # noqa: E402


def test_targets_doc_is_generated_and_current():
    """docs/targets.md is computed from the packaged target files and memory plans; regenerate with `make docs`."""
    doc = ROOT / "docs" / "targets.md"
    assert doc.read_text() == render(), "docs/targets.md is stale: run `make docs`"
