#!/usr/bin/env bash
# One-step set-up on a fresh Debian-like machine with Python 3.11:
#   - Debian packages: fluidsynth and the FluidR3_GM soundfont (for the synthetic corpus),
#     installed with apt-get when run as root, otherwise named so you can install them;
#   - a virtual environment in .venv with mixinvert and its test dependencies.
#   - with `test` (what the README's test command and CI use): also Debian's chromium and
#     chromium-driver, for the headless-browser test of report.html.
# Idempotent: a second run only checks. Extra pip extras may be given: scripts/setup.sh bench
set -euo pipefail
cd "$(dirname "$0")/.."

extras="dev"
for extra in "$@"; do extras="$extras,$extra"; done

missing=()
command -v fluidsynth >/dev/null 2>&1 || missing+=(fluidsynth)
[ -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || missing+=(fluid-soundfont-gm)
if [[ ",$extras," == *",test,"* ]]; then
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
fi
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing Debian packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "setup: mixinvert needs these Debian packages: ${missing[*]}" >&2
        echo "setup: install them with: sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
fi

python=${PYTHON:-python3.11}
command -v "$python" >/dev/null 2>&1 || python=python3
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $($python --version)"
    "$python" -m venv .venv
fi
stamp=.venv/.mixinvert-setup
want="$(cat pyproject.toml scripts/constraints.txt | sha256sum | cut -c1-16) $extras"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup: installing mixinvert[$extras] into .venv (first run takes a few minutes)"
    .venv/bin/python -m pip install -q --upgrade pip
    # torch first, from the pinned CPU build, so no dependency can pull another one.
    .venv/bin/python -m pip install -q -c scripts/constraints.txt torch==2.13.0
    .venv/bin/python -m pip install -q -c scripts/constraints.txt -e ".[$extras]"
    echo "$want" > "$stamp"
fi
echo "setup: ready (.venv/bin/mixinvert)"
