"""Every benchmark in one run; prints the tables and writes them to bench/RESULTS.md.

python -m bench.run_all            # full: about 13-16 minutes on 2 cores
python -m bench.run_all --quick    # a few minutes, fewer sizes and shorter turns
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench import ceiling, overhead, served, startup
from bench.common import RESULTS, ServeInstance, machine, write_results

PARTS = ("ceiling", "served", "overhead", "startup")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes, shorter turns")
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument(
        "--no-write", action="store_true", help="print the sections; leave bench/RESULTS.md alone"
    )
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    started, header = time.time(), machine()
    sections: list[str] = []
    ceilings: dict[tuple[str, int], float] = {}
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        from sapheneia.testing import write_random_timesfm_2p5

        checkpoint = write_random_timesfm_2p5(root / "timesfm-2.5")
        if "ceiling" in args.only:
            text, ceilings = ceiling.run(checkpoint, args.quick)
            sections.append(text)
            print(text, "\n", flush=True)
        if "served" in args.only or "overhead" in args.only:
            (root / "data").mkdir()
            instance = ServeInstance(root / "data", root / "state")
            try:
                # Without the served part, the statistical models alone (no TimesFM to load).
                needs_timesfm = "served" in args.only
                instance.deploy(
                    served.app_args(checkpoint) if needs_timesfm else served.statistical_args()
                )
                if "served" in args.only:
                    sections.append(served.run(instance.url, checkpoint, ceilings, args.quick))
                    print(sections[-1], "\n", flush=True)
                if "overhead" in args.only:
                    sections.append(overhead.run(instance.url, args.quick))
                    print(sections[-1], "\n", flush=True)
            finally:
                instance.close()
        if "startup" in args.only:
            sections.append(startup.run(args.quick))
            print(sections[-1], "\n", flush=True)
    if not args.no_write:
        write_results(sections, started, header)
        print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
