#!/bin/sh
# Smoke test on a real Raspberry Pi: opens the camera, captures a few frames, renders
# the variants (from the lores stream and, for comparison, from the full frame),
# publishes once into a temporary directory and prints the timings.
#
#   scripts/pi-smoke.sh [-c CONFIG] [--frames N] [--keep]
#
#   -c CONFIG   take [camera] and [[variants]] from CONFIG (default: the Pi camera at
#               2028x1520 with the default variants); the target is always a temp dir
#   --frames N  frames to capture and time (default 5)
#   --keep      keep the temp dir with what was published
#
# Stop the service first if it runs (it holds the camera): sudo systemctl stop livecam
# Python: $PYTHON, else .venv, else /opt/livecam/venv, else python3.
set -eu

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
config="" frames=5 keep=0

usage() {
    sed -n '2,14s/^# \{0,1\}//p' "$0"
}

while [ $# -gt 0 ]; do
    case "$1" in
        -c | --config)
            [ $# -ge 2 ] || { usage >&2; exit 2; }
            config="$2"
            shift 2
            ;;
        --frames)
            [ $# -ge 2 ] || { usage >&2; exit 2; }
            frames="$2"
            shift 2
            ;;
        --keep)
            keep=1
            shift
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            printf 'pi-smoke: unknown option %s\n' "$1" >&2
            usage >&2
            exit 2
            ;;
    esac
done
case "$frames" in
    "" | *[!0-9]*) printf 'pi-smoke: --frames needs a number, got %s\n' "$frames" >&2; exit 2 ;;
esac

py="${PYTHON:-}"
for candidate in "$ROOT/.venv/bin/python" /opt/livecam/venv/bin/python python3; do
    [ -n "$py" ] && break
    if command -v "$candidate" >/dev/null 2>&1; then
        py="$candidate"
    fi
done

out="$(mktemp -d "${TMPDIR:-/tmp}/livecam-smoke-XXXXXX")"
if [ "$keep" = 0 ]; then
    trap 'rm -rf "$out"' EXIT
fi
chmod 0755 "$out"

PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$py" - "$out" "$frames" "$config" <<'EOF'
"""The smoke test itself: livecam's own parts, timed."""
import sys
import time
from dataclasses import replace

from livecam import config as C
from livecam.camera import open_camera
from livecam.camera.base import Frame
from livecam.errors import LivecamError
from livecam.render import Renderer
from livecam.loop import Publisher
from livecam.targets.local import LocalTarget

out, frames, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


try:
    cfg = C.load(path) if path else C.parse({"camera": {}, "target": {"kind": "local", "path": out}})
    cfg = replace(cfg, target=C.TargetConfig(kind="local", path=out))
    t = time.monotonic()
    camera = open_camera(cfg.camera, cfg.variants)
    print(f"camera open      {ms(time.monotonic() - t)}  {camera.describe()}")
    small = [v for v in cfg.variants if v.width is not None or v.height is not None]
    renderer = Renderer(small)
    for i in range(frames):
        t = time.monotonic()
        with camera.capture() as frame:
            took = time.monotonic() - t
            w, h = frame.size
            kind = "YUV420" if frame.image is None else frame.image.mode
            line = f"capture {i + 1:<8} {ms(took)}  {w}x{h} {kind}"
            lores = None if frame.lores is None else frame.lores.size
            if lores is not None and small:
                c = time.process_time()
                renderer.render(frame)
                with_lores = time.process_time() - c
                c = time.process_time()
                renderer.render(Frame(frame.image, frame.captured_at, frame.planes))
                without = time.process_time() - c
                line += (
                    f"; small variants CPU {ms(with_lores).strip()} from lores "
                    f"{lores[0]}x{lores[1]}, {ms(without).strip()} from the full frame"
                    f" ({renderer.path})"
                )
        print(line, flush=True)
    publisher = Publisher(cfg, lambda: camera, LocalTarget(out))
    publisher.start()
    result = publisher.publish_next(force=True)
    publisher.close()
    print(result.summary())
    print(f"published into {out}")
except LivecamError as e:
    print(f"FAIL {e}", file=sys.stderr)
    if "another program" in str(e):
        print("is the service running? sudo systemctl stop livecam", file=sys.stderr)
    sys.exit(1)
EOF
[ "$keep" = 1 ] && ls -l "$out"
exit 0
