"""benchmarks/cpu_per_record.py in its quick mode: it runs end to end and prints the whole table."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "cpu_per_record.py"
BASELINES = {
    "minimal client, raw records": "minimal client",
    "minimal client jsonl.gz": "minimal client",
    "operator jsonl": "minimal client",
    "operator csv": "minimal client",
    "operator jsonl.gz": "minimal client jsonl.gz",
    "operator csv.gz": "minimal client jsonl.gz",
}
ROWS = {
    "campaigns": [
        "minimal client",
        "minimal client, raw records",
        "minimal client jsonl.gz",
        "hook iter_campaigns",
        "operator jsonl",
        "operator csv",
        "operator jsonl.gz",
        "operator csv.gz",
    ],
    "messages": [
        "minimal client",
        "minimal client jsonl.gz",
        "hook iter_messages",
        "operator jsonl",
        "operator csv",
        "operator jsonl.gz",
        "operator csv.gz",
    ],
}


def test_quick_run_prints_a_row_and_a_ratio_for_every_contender() -> None:
    command = [sys.executable, str(SCRIPT), "--records", "2000", "--messages", "2000", "--rounds", "1"]
    done = subprocess.run(command, capture_output=True, text=True, encoding="utf-8", timeout=100)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert out.startswith(f"command: {sys.executable} {SCRIPT} --records 2000"), out[:300]
    for resource, rows in ROWS.items():
        table = out.split(f"\n{resource}: CPU µs per record")[1].split("\n\n")[0]
        for name in rows:
            numbers = r"\s+(\d+\.\d\d)" * 3
            match = re.search(rf"^{re.escape(name)}{numbers}(?:\s+(\d+\.\d\d)x\s+(.+?)\s{{2}})?", table, re.M)
            assert match, f"no {resource} row for {name!r} in:\n{table}"
            assert float(match[1]) > 0
            baseline = BASELINES.get(name, "minimal client" if name.startswith("hook") else None)
            assert match[5] == baseline, f"{resource} {name}: ratio against {match[5]!r}, not {baseline!r}"
        # The four targets, each judged.
        for name in ("operator jsonl", "operator csv"):
            assert re.search(rf"^(PASS|FAIL): {resource} {name} \d+\.\d\dx the minimal client", out, re.M)
