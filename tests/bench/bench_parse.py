"""HTML furniture stripping on a page of 100,000 elements, against parsing it.

Run: .venv/bin/python tests/bench/bench_parse.py [--repeat 5]
Prints one JSON line: the best of `repeat` runs of lxml's parse of the page (the
baseline, the same process) and of the two stripping passes of
knowledge/parsers/html.py over it (`_strip_boilerplate`, `_strip_navigation`), and
their ratio. The page: 400 paragraphs, each 250 nested <span>s around 2,000 words,
no class or id anywhere. The name rules must look at an element's class and id
before anything else: an xpath call per element (~7 us each) made the passes 3.6x
slower (session 5's review: 0.37 s -> 1.35 s).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from lxml import html as lxml_html

from helpfaster_box.knowledge.parsers import html

CELL = "<p>" + "<span>" * 250 + "x " * 2000 + "</span>" * 250 + "</p>"
PAGE = f"<html><body>{CELL * 400}</body></html>"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    parse_s, strip_s = [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        doc = lxml_html.document_fromstring(PAGE)
        t1 = time.perf_counter()
        html._strip_boilerplate(doc)
        html._strip_navigation(doc)
        t2 = time.perf_counter()
        parse_s.append(t1 - t0)
        strip_s.append(t2 - t1)
    out = {
        "bench": "parse",
        "elements": len(lxml_html.document_fromstring(PAGE).xpath("//*")),
        "parse_s": round(min(parse_s), 3),
        "strip_s": round(min(strip_s), 3),
        "ratio": round(min(strip_s) / min(parse_s), 2),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
