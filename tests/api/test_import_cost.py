"""What `import api.app` loads: every `switchboard` command, server process and test worker pays for it."""

from __future__ import annotations

import subprocess
import sys

# Heavy libraries only some paths need (clustering, XLSX export, NLU training): imported where they are used.
# scikit-learn with SciPy was a third of the import's time, openpyxl 5 % (decision record "Heavy imports on use").
LAZY = ("sklearn", "scipy", "openpyxl")


def test_importing_the_app_leaves_the_heavy_libraries_out() -> None:
    code = f"import sys, api.app; print(' '.join(m for m in {LAZY!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.split() == [], f"imported at start-up: {result.stdout}"
