"""Executes every notebook in notebooks/ headless against the results in $REEF_RESULTS.

A notebook passes when every cell runs without an error (their own asserts included)."""

import sys
from pathlib import Path

import nbclient
import nbformat

passed, failed = 0, 0
for path in sorted(Path(sys.argv[1]).glob("*.ipynb")):
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()
        passed += 1
        print(f"notebook {path.name}: ok")
    except Exception as e:  # a failing cell: show it and go on with the others
        failed += 1
        print(f"notebook {path.name}: FAILED\n{e}")
print(f"notebooks: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
