"""Screenshot an inversion's report.html in headless Chromium (for the README's docs/report.png).

    .venv/bin/mixinvert demo --kit ../shared/data/muldjordkit --method eami+refine --out /tmp/demo
    .venv/bin/python scripts/report_screenshot.py /tmp/demo/inverted docs/report.png

Builds OUT_DIR/report.html first if it is not there. Needs the `test` set-up
(``bash scripts/setup.sh test``: selenium, Debian's chromium and chromium-driver).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="an invert output folder (params.json, mix.wav)")
    parser.add_argument("png", type=Path, help="where to write the screenshot, e.g. docs/report.png")
    parser.add_argument("--width", type=int, default=1400, help="window width in px (default 1400)")
    parser.add_argument("--height", type=int, default=None,
                        help="keep only the top HEIGHT px (default: the whole page)")
    parser.add_argument("--colors", type=int, default=128,
                        help="palette size of the saved PNG (default 128: a third of the size; 0 keeps full colour)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild report.html even if it exists")
    args = parser.parse_args(argv)

    from mixinvert.reporting import build_report
    from mixinvert.reporting.browser import BrowserUnavailable, full_page_screenshot, headless_chromium

    html_path = args.out_dir / "report.html"
    if args.rebuild or not html_path.is_file():
        build_report(args.out_dir, progress=lambda msg: print(f"report: {msg}", file=sys.stderr))
    try:
        with headless_chromium(width=args.width) as driver:
            driver.get(html_path.resolve().as_uri())
            if args.height is None:
                full_page_screenshot(driver, args.png, width=args.width)
            else:
                driver.set_window_size(args.width, args.height)
                frame = int(driver.execute_script("return window.outerHeight - window.innerHeight"))
                driver.set_window_size(args.width, args.height + max(frame, 0))
                args.png.parent.mkdir(parents=True, exist_ok=True)
                driver.save_screenshot(str(args.png))
    except BrowserUnavailable as err:
        print(f"report_screenshot: {err}", file=sys.stderr)
        return 2
    if args.colors:
        from PIL import Image

        with Image.open(args.png) as shot:
            image = shot.convert("RGB")
        image.quantize(colors=args.colors, method=Image.Quantize.MEDIANCUT).save(args.png, optimize=True)
    print(args.png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
