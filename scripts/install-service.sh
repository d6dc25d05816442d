#!/bin/sh
# Installs livecam as a systemd service, or removes it. Idempotent: run it again after
# `git pull` to upgrade; it never overwrites /etc/livecam/config.toml.
#
#   sudo scripts/install-service.sh                   install or upgrade, enable, (re)start
#   sudo scripts/install-service.sh --nginx           also serve /run/livecam with nginx
#   scripts/install-service.sh --dry-run [...]        print each action, change nothing
#   sudo scripts/install-service.sh --uninstall       remove the service and its venv
#   sudo scripts/install-service.sh --uninstall --purge   also the config and the user
#
# What it does: a system user "livecam" (group video, for the camera); a venv in
# /opt/livecam/venv made with --system-site-packages (so that apt's picamera2 and
# libcamera stay visible) with this checkout pip-installed into it; the config in
# /etc/livecam/config.toml, livecam's alone: 0600 (it may hold S3 keys); the unit
# scripts/livecam.service; for a local target outside /run/livecam, a drop-in that
# lets the service write there. Environment: LIVECAM_PREFIX (default /opt/livecam),
# LIVECAM_CONFIG_DIR (default /etc/livecam), PYTHON (default python3).
set -eu

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PREFIX="${LIVECAM_PREFIX:-/opt/livecam}"
CONF_DIR="${LIVECAM_CONFIG_DIR:-/etc/livecam}"
CONF="$CONF_DIR/config.toml"
PY="${PYTHON:-python3}"
NAME=livecam
UNIT="/etc/systemd/system/$NAME.service"
DROPIN_DIR="/etc/systemd/system/$NAME.service.d"
NGINX_SITE="/etc/nginx/sites-available/$NAME"
RUN_DIR="/run/$NAME"

dry=0 uninstall=0 purge=0 nginx=0 start=1

usage() {
    sed -n '2,17s/^# \{0,1\}//p' "$0"
    printf '\nOptions: --dry-run --nginx --no-start --uninstall --purge --help\n'
}

die() {
    printf 'install-service: %s\n' "$*" >&2
    exit 1
}

say() {
    printf '%s\n' "$*" >&2
}

# Print a command as the shell would take it back.
show() {
    line="+"
    for arg in "$@"; do
        case "$arg" in
            "" | *[!A-Za-z0-9_./:=@%+,-]*)
                arg="'$(printf '%s' "$arg" | sed "s/'/'\\\\''/g")'"
                ;;
        esac
        line="$line $arg"
    done
    printf '%s\n' "$line"
}

# Tell what was done (not in a dry run: nothing was).
done_say() {
    [ "$dry" = 1 ] || say "$@"
}

# Run a command, or only print it with --dry-run.
run() {
    show "$@"
    [ "$dry" = 1 ] || "$@"
}

# write_file MODE OWNER:GROUP PATH [SUMMARY] < content: replace PATH atomically.
# --dry-run shows the content, or SUMMARY instead when given.
write_file() {
    if [ "$dry" = 1 ]; then
        printf '+ write %s (mode %s, owner %s)%s\n' "$3" "$1" "$2" "${4:+: $4}"
        if [ -n "${4:-}" ]; then
            cat >/dev/null
        else
            sed 's/^/|   /'
        fi
        return
    fi
    printf '+ write %s\n' "$3"
    tmp="$(mktemp "$3.XXXXXX")"
    cat >"$tmp"
    chown "$2" "$tmp"
    chmod "$1" "$tmp"
    mv -f "$tmp" "$3"
}

for arg in "$@"; do
    case "$arg" in
        --dry-run) dry=1 ;;
        --uninstall) uninstall=1 ;;
        --purge) purge=1 ;;
        --nginx) nginx=1 ;;
        --no-start) start=0 ;;
        -h | --help)
            usage
            exit 0
            ;;
        *) die "unknown option $arg (see --help)" ;;
    esac
done

case "$PREFIX" in
    /*/*) ;;
    *) die "LIVECAM_PREFIX must be an absolute path below a directory, got '$PREFIX'" ;;
esac
if [ "$(id -u)" -ne 0 ] && [ "$dry" = 0 ]; then
    die "run it as root: sudo $0 $* (or add --dry-run to see what it would do)"
fi
if ! command -v systemctl >/dev/null 2>&1; then
    [ "$dry" = 1 ] || die "systemctl not found: this needs a systemd Linux (Raspberry Pi OS is one)"
    say "note: systemctl not found; a real run needs systemd"
fi
[ "$dry" = 1 ] && say "dry run: printing the actions, changing nothing"

if [ "$uninstall" = 1 ]; then
    if [ -f "$UNIT" ] || [ "$dry" = 1 ]; then
        run systemctl disable --now "$NAME.service"
    fi
    run rm -f "$UNIT"
    run rm -rf "$DROPIN_DIR"
    run systemctl daemon-reload
    run rm -rf "$PREFIX" "$RUN_DIR"
    if [ -L "/etc/nginx/sites-enabled/$NAME" ]; then
        run rm -f "/etc/nginx/sites-enabled/$NAME" "$NGINX_SITE"
        run systemctl reload nginx
    fi
    if [ "$purge" = 1 ]; then
        run rm -rf "$CONF_DIR"
        if id -u "$NAME" >/dev/null 2>&1; then
            run userdel "$NAME"
        fi
    else
        done_say "kept $CONF and the user $NAME (--purge removes them too)"
    fi
    exit 0
fi

# --- checks ------------------------------------------------------------------------

"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null ||
    die "livecam needs Python 3.11 or newer as $PY (Raspberry Pi OS Bookworm has it)"
"$PY" -c 'import venv, ensurepip' 2>/dev/null ||
    die "Python's venv is missing: sudo apt install -y python3-venv"
if ! "$PY" -c 'import picamera2' 2>/dev/null; then
    say "note: picamera2 is not installed for $PY; for a Pi camera (source = \"picamera2\")"
    say "      run: sudo apt install -y python3-picamera2 --no-install-recommends"
fi

# The overlay's fonts: DejaVu Sans (on Raspberry Pi OS already, not on every Lite
# image) and a small CJK fallback; Pillow's own font has Latin letters only.
fonts=""
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || fonts="$fonts fonts-dejavu-core"
[ -e /usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf ] ||
    fonts="$fonts fonts-droid-fallback"
if [ -n "$fonts" ]; then
    if command -v apt-get >/dev/null 2>&1; then
        # shellcheck disable=SC2086 # $fonts is a list of package names
        run apt-get install -y -qq --no-install-recommends $fonts
    else
        say "note: the overlay wants the fonts:$fonts (install them with your package manager)"
    fi
fi

# --- user --------------------------------------------------------------------------

if ! id -u "$NAME" >/dev/null 2>&1; then
    run useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin --comment "livecam publisher" "$NAME"
fi
if getent group video >/dev/null 2>&1; then
    case " $(id -nG "$NAME" 2>/dev/null || true) " in
        *" video "*) ;;
        *) run usermod --append --groups video "$NAME" ;;
    esac
fi

# --- code: a venv that sees apt's picamera2, with this checkout installed ------------

venv="$PREFIX/venv"
if [ -x "$venv/bin/python" ] && ! grep -qs '^include-system-site-packages = true' "$venv/pyvenv.cfg"; then
    say "$venv was made without --system-site-packages: making it again"
    run rm -rf "$venv"
fi
if [ ! -x "$venv/bin/python" ] || [ "$dry" = 1 ]; then
    [ -x "$venv/bin/python" ] || run "$PY" -m venv --system-site-packages "$venv"
fi
pip_install() {
    run "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "$@"
}
# With the "fast" extra (OpenCV, simplejpeg, numpy: 2-3x less CPU per frame, see
# docs/performance.md), from wheels only: building OpenCV on a Pi takes hours. apt's
# numpy stays: apt's simplejpeg, which picamera2 imports, is built against it, and a
# newer numpy in the venv would shadow it.
set --
if [ "$dry" = 0 ] && np="$("$venv/bin/python" -c 'import numpy; print(numpy.__version__)' 2>/dev/null)"; then
    pins="$(mktemp)"
    trap 'rm -f "$pins"' EXIT
    printf 'numpy==%s\n' "$np" >"$pins"
    set -- --constraint "$pins"
fi
if ! pip_install "$@" --only-binary opencv-python-headless "${ROOT}[fast]"; then
    say "note: no OpenCV wheel for this system; livecam renders with Pillow alone"
    say "      (apt's OpenCV does the same job: sudo apt install -y python3-opencv)"
    pip_install "$ROOT"
fi
# The archive's daily timelapse (README "History") needs PyAV: wheels bundle libx264.
if ! pip_install "$@" --only-binary av "${ROOT}[timelapse]"; then
    say "note: no PyAV wheel for this system; the archive makes no timelapses"
fi
run install -m 0644 "$ROOT/README.md" "$PREFIX/README.md"

# --- config: never overwritten; only the service's user reads it (the unit's
# ProtectSystem=strict keeps /etc read-only for the service itself) -------------------

run install -d -m 0750 -o root -g "$NAME" "$CONF_DIR"
if [ -f "$CONF" ]; then
    run chown "$NAME:$NAME" "$CONF"
    run chmod 0600 "$CONF"
else
    # The example, with the local target on tmpfs (RuntimeDirectory=livecam).
    sed "s|^path = \"/var/www/html/live\" *|path = \"$RUN_DIR\"     |" "$ROOT/config.example.toml" |
        write_file 0600 "$NAME:$NAME" "$CONF" "config.example.toml with target.path = \"$RUN_DIR\""
    done_say "wrote $CONF from config.example.toml: edit it (sudoedit $CONF), then"
    done_say "    sudo systemctl restart $NAME"
fi

# Where a local target writes; the service may write nowhere else.
target="$RUN_DIR"
if [ -f "$CONF" ]; then
    target="$("$PY" - "$CONF" <<'EOF'
import sys
import tomllib

try:
    with open(sys.argv[1], "rb") as f:
        t = tomllib.load(f).get("target", {})
except (OSError, ValueError):
    sys.exit(0)
if isinstance(t, dict) and t.get("kind", "local") == "local" and isinstance(t.get("path"), str):
    print(t["path"])
EOF
)" || target=""
fi

# --- the unit ----------------------------------------------------------------------

sed -e "s|/opt/livecam/venv|$venv|g" -e "s|file:///opt/livecam/|file://$PREFIX/|" \
    "$ROOT/scripts/livecam.service" | write_file 0644 root:root "$UNIT"
case "$target" in
    "" | "$RUN_DIR" | "$RUN_DIR"/*)
        if [ -d "$DROPIN_DIR" ] || [ "$dry" = 1 ]; then
            run rm -f "$DROPIN_DIR/target.conf"
        fi
        ;;
    /*)
        run install -d -m 0755 -o "$NAME" -g "$NAME" "$target"
        run install -d -m 0755 "$DROPIN_DIR"
        printf '# Written by install-service.sh: the local target in %s\n[Service]\nReadWritePaths="%s"\n' \
            "$CONF" "$target" | write_file 0644 root:root "$DROPIN_DIR/target.conf"
        ;;
    *) die "target.path in $CONF must be an absolute path for the service, got '$target'" ;;
esac

# --- nginx (optional): the local target on port 80 -----------------------------------

if [ "$nginx" = 1 ]; then
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || [ "$dry" = 1 ] ||
        die "nginx is not installed: sudo apt install -y nginx"
    sed "s|^    root /run/livecam;|    root \"${target:-$RUN_DIR}\";|" "$ROOT/scripts/nginx-livecam.conf" |
        write_file 0644 root:root "$NGINX_SITE" "scripts/nginx-livecam.conf serving ${target:-$RUN_DIR}"
    run ln -sfn "$NGINX_SITE" "/etc/nginx/sites-enabled/$NAME"
    run rm -f /etc/nginx/sites-enabled/default
    run nginx -t -q
    run systemctl reload-or-restart nginx
fi

# --- start -------------------------------------------------------------------------

run systemctl daemon-reload
run systemctl enable "$NAME.service"
if [ "$start" = 1 ]; then
    run systemctl restart "$NAME.service"
    done_say "livecam is running. Its log: journalctl -u $NAME -f"
else
    done_say "installed, not started: sudo systemctl start $NAME"
fi
