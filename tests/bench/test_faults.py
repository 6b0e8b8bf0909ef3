"""The fault suite's short run, on every change: the correctness targets under kill -9 and outages.

Run it alone with `pytest -m faults`. Only correctness is asserted (nothing lost, nothing stored twice, no
reply stuck); how many replies went twice depends on timing and is printed, not asserted.
"""

from __future__ import annotations

import glob
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.faults, pytest.mark.slow(seconds=65)]


@pytest.mark.timeout(2400)  # six scenarios of about a minute each, more on a busy machine
@pytest.mark.skipif(not glob.glob("/usr/lib/postgresql/*/bin/initdb"), reason="needs PostgreSQL's binaries")
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_short_fault_suite_loses_nothing_and_leaves_nothing_stuck(tmp_path: Path) -> None:
    out = tmp_path / "faults.json"
    command = [sys.executable, str(ROOT / "bench" / "faults.py"), "--short", "--no-live", "--json", str(out)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=2300, check=False)
    print(result.stdout)
    assert out.exists(), result.stderr[-3000:]
    rows = json.loads(out.read_text())
    assert rows, "no scenario ran"
    for row in rows:
        where = f"{row['scenario']}: {row}"
        assert not row["notes"].startswith("ERROR"), where
        assert row["faults"] >= 1, where  # a kill or an outage happened while the traffic ran
        assert row["acknowledged"] == row["sent"] > 0 and row["replies_expected"] > 0, where
        assert row["lost"] == 0, where
        assert row["stored_twice"] == 0, where
        assert row["stored_once"] == row["acknowledged"], where
        assert row["stuck"] == 0, where
        assert row["delivered"] == row["replies_expected"], where
