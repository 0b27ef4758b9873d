"""The README's main-job command, run as a user runs it: a real process, real HTTPS."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_demo_publishes_sample_and_reads_it_back(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dsmsyncd.cli.main", "demo", "--data-dir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "published 5 rows" in out
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("  {")]
    assert [r["address"] for r in rows][:2] == ["12 Main Street", "7 Harbor Road"]
    assert rows[0]["fee"] == "125.5"
    assert "/resource/" in out
    assert (tmp_path / "demo" / "server" / "tls" / "ca.pem").exists()
