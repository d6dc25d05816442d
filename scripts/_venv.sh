# shellcheck shell=sh
# Sourced by scripts/demo and scripts/test: make .venv with livecam installed.
# Usage: ensure_venv [EXTRAS]   (EXTRAS e.g. "test"; quiet when already up to date)

ensure_venv() {
    extras="$1"
    root="$(pwd)"
    py="${PYTHON:-python3}"
    if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "livecam needs Python 3.11 or newer as '$py' (set PYTHON=/path/to/python3.11)" >&2
        exit 2
    fi
    if [ ! -x .venv/bin/python ]; then
        echo "setting up .venv (once)..." >&2
        # Isolated on purpose: the tests must not pass thanks to packages installed by
        # hand. (The Pi service's venv, made by install-service.sh, sees apt's picamera2.)
        "$py" -m venv .venv
    fi
    spec="."
    [ -n "$extras" ] && spec=".[$extras]"
    stamp=".venv/.livecam-installed-${extras:-base}"
    want="$(cksum < pyproject.toml)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        echo "installing Python packages into .venv ($spec)..." >&2
        .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
        .venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$spec" >&2
        echo "$want" > "$stamp"
    fi
    : "$root"
}
