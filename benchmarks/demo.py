"""Wall time of `dualanodiff demo`, stage by stage, against its 10-minute budget on a 2-core machine.

    python benchmarks/demo.py [--out DIR] [--threads N] [--json PATH]

Runs the real demo (synthetic data, tiny training with BCM, 16 triplets, contact sheet) in a fresh folder and prints
one table. A first run includes Python's and PyTorch's start-up in its total, as a user would see it.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

BUDGET_SECONDS = 600


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="demo folder (default: a fresh temporary folder)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args()
    start = time.perf_counter()
    import torch

    from dualanodiff.demo import run_demo

    if args.threads:
        torch.set_num_threads(args.threads)
    imports = time.perf_counter() - start
    out = args.out or Path(tempfile.mkdtemp(prefix="dualanodiff-demo-")) / "demo"
    result = run_demo(out)
    seconds = {"imports": imports, **result.seconds}
    total = sum(seconds.values())
    print(f"demo wall time on {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads")
    print(f"| {'stage':<16} | {'seconds':>8} |")
    print(f"|{'-' * 18}|{'-' * 10}|")
    for stage, value in seconds.items():
        print(f"| {stage:<16} | {value:8.1f} |")
    print(f"| {'total':<16} | {total:8.1f} |")
    print(f"total / budget ({BUDGET_SECONDS} s): {total / BUDGET_SECONDS:.2f}")
    print(f"contact sheet: {result.paths['contact_sheet']}")
    if args.json:
        args.json.write_text(json.dumps({"seconds": seconds, "total_seconds": total,
                                         "budget_seconds": BUDGET_SECONDS, "threads": torch.get_num_threads()},
                                        indent=2))


if __name__ == "__main__":
    main()
