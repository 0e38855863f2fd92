#!/usr/bin/env python3
"""Generate the ILLUSTRATIVE sample territories in geo_comuna/data/samples/ (package data).

    python3 data/boundaries/make_samples.py           # regenerate every file, then self-check
    python3 data/boundaries/make_samples.py --check   # only check the files already on disk

The generator is the package beside this file, samples_gen/ (one module per commune plus
the shared helpers; its __init__ says what is where). Seeds are fixed and features sorted, so
reruns are byte-identical. Needs only the package's ve_states.geojson: no network.
"""

from __future__ import annotations

import argparse
import time

from samples_gen.check import check, report
from samples_gen.generate import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check the existing files")
    args = parser.parse_args()
    started = time.perf_counter()
    if not args.check:
        generate()
    report(check())
    print(f"ok in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
