from pathlib import Path

from edgeticket.docs_targets import render


def test_targets_doc_is_generated_and_current():
    """docs/targets.md is computed from targets/*.toml and memory plans; regenerate with `make docs`."""
    doc = Path(__file__).resolve().parent.parent / "docs" / "targets.md"
    assert doc.read_text() == render(), "docs/targets.md is stale: run `make docs`"
