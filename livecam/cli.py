"""The command line: parses arguments, wires the parts, turns errors into exit codes.

Exit codes: 0 success, 1 a runtime failure (camera gave up, target unreachable in
`once`/`check`), 2 a configuration or usage error (systemd does not restart on 2).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from livecam import __version__, httpserver
from livecam import config as config_mod
from livecam.camera import open_camera
from livecam.config import Config
from livecam.errors import CameraFatalError, ConfigError, LivecamError
from livecam.loop import Publisher
from livecam.notify import Notifier
from livecam.render import Renderer
from livecam.targets import CheckStep, open_target

log = logging.getLogger("livecam")

DEFAULT_CONFIG = "/etc/livecam/config.toml"
EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line, exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_CONFIG, f"{self.prog}: error: {message} (see --help)\n")


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-c",
        "--config",
        metavar="CONFIG",
        default=os.environ.get("LIVECAM_CONFIG", DEFAULT_CONFIG),
        help=f"TOML config file (default: $LIVECAM_CONFIG or {DEFAULT_CONFIG})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="livecam",
        description="Publish a camera's live image, in several sizes, to static hosting.",
    )
    parser.add_argument("--version", action="version", version=f"livecam {__version__}")
    common = _Parser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="log every frame (debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser(
        "run",
        parents=[common],
        help="publish forever (the service)",
        description="Publish frames until stopped (SIGTERM/SIGINT).",
    )
    _add_config(p)
    p = sub.add_parser(
        "once",
        parents=[common],
        help="capture and publish exactly one frame",
        description="Capture and publish one frame; exit 0 on success.",
    )
    _add_config(p)
    p = sub.add_parser(
        "check",
        parents=[common],
        help="validate config, camera and target, step by step",
        description="Validate the config, open the camera and capture a frame, then write, "
        "read and delete a probe object on the target. Exit non-zero on any failure.",
    )
    _add_config(p)
    p = sub.add_parser(
        "cost",
        parents=[common],
        help="expected requests, storage and a monthly price per provider",
        description="Estimate the PUTs, GETs and storage this config causes in a 30-day month "
        "and what AWS S3, Cloudflare R2 and Backblaze B2 charge for them.",
    )
    _add_config(p)
    p.add_argument(
        "--fps",
        type=_rate,
        metavar="F",
        help="frames per second to assume (needed when interval = 0; default 1)",
    )
    p.add_argument(
        "--viewers",
        type=_rate,
        default=0.0,
        metavar="N",
        help="viewers watching around the clock, for the GET count (default 0)",
    )
    p = sub.add_parser(
        "demo",
        parents=[common],
        help="zero-config demo: test camera, local page on :8000",
        description="Publish a test pattern into a local directory and serve the live page.",
    )
    p.add_argument("--port", type=_port, default=8000, help="HTTP port (default 8000)")
    p.add_argument(
        "--bind",
        default="127.0.0.1",
        metavar="ADDR",
        help="address to listen on (default 127.0.0.1: this machine only)",
    )
    p.add_argument(
        "--dir",
        type=_demo_dir,
        metavar="DIR",
        help="publish into DIR, new, empty or a previous demo's (default: a temporary "
        "directory, removed on exit)",
    )
    p.add_argument(
        "--interval", type=_interval, default=1.0, help="seconds between frames (default 1)"
    )
    p.add_argument(
        "--size",
        type=_size,
        default=(1280, 720),
        metavar="WxH",
        help="test pattern size (default 1280x720)",
    )
    return parser


def _ranged(parse: Callable[[str], float], lo: float, hi: float, what: str) -> Callable[[str], Any]:
    """An argparse type: `parse(value)` from `lo` to `hi`, else one line saying so."""

    def check(value: str) -> Any:
        try:
            number = parse(value)
        except ValueError:
            number = None
        if number is None or not lo <= number <= hi:
            raise argparse.ArgumentTypeError(f"must be {what} from {lo} to {hi}, got {value!r}")
        return number

    return check


_port = _ranged(int, 0, 65535, "a port number")
_interval = _ranged(float, 0, 3600, "seconds")
_rate = _ranged(float, 0, 1000, "a number")


def _size(value: str) -> tuple[int, int]:
    try:
        w, h = (int(x) for x in value.lower().split("x"))
    except ValueError:
        w = h = -1
    lo, hi = config_mod.MIN_SIZE, config_mod.MAX_SIZE
    if not (lo <= w <= hi and lo <= h <= hi):
        raise argparse.ArgumentTypeError(f"must be WIDTHxHEIGHT, each {lo} to {hi}, got {value!r}")
    return w, h


# Written into the demo's directory: `demo --dir` reuses only a directory holding it,
# since it overwrites index.html there and serves whatever else the directory holds.
DEMO_MARKER = ".livecam-demo"


def _demo_dir(value: str) -> Path:
    path = Path(value)
    try:
        if path.exists() and not (path / DEMO_MARKER).is_file() and any(path.iterdir()):
            raise argparse.ArgumentTypeError(
                f"{value!r} is not empty and not a previous demo's directory (it has no"
                f" {DEMO_MARKER}): give a new or empty directory"
            )
    except OSError as e:
        raise argparse.ArgumentTypeError(f"{value!r}: {e.strerror or e}") from e
    return path


def setup_logging(verbose: bool) -> None:
    # journald stamps each line itself; a terminal gets the time from us.
    fmt = "%(levelname)s %(name)s: %(message)s"
    if not os.environ.get("JOURNAL_STREAM"):
        fmt = "%(asctime)s " + fmt
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format=fmt, stream=sys.stderr, force=True
    )
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _load(path: str) -> Config:
    cfg = config_mod.load(path)
    if warning := config_mod.insecure_secrets(cfg):
        log.warning("%s", warning)
    return cfg


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _publisher(cfg: Config, stop: threading.Event | None = None) -> Publisher:
    return Publisher(
        cfg,
        lambda: open_camera(cfg.camera, cfg.variants),
        open_target(cfg.target, stop),
        notifier=Notifier(),
    )


def cmd_run(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    stop = threading.Event()
    _stop_on_signals(stop)
    publisher = _publisher(cfg, stop)
    try:
        publisher.run(stop)
    finally:
        publisher.close()
    return EXIT_OK


def cmd_once(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    publisher = _publisher(cfg)
    try:
        publisher.start()
        result = publisher.publish_next(force=True)
    finally:
        publisher.close()
    print(result.summary())
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    ok = True

    def report(step: CheckStep) -> None:
        nonlocal ok
        ok = ok and step.ok
        mark = "ok  " if step.ok else "FAIL"
        print(f"{mark} {step.what}" + (f": {step.detail}" if step.detail else ""), flush=True)

    try:
        cfg = _load(args.config)
    except ConfigError as e:
        report(CheckStep(f"config {args.config}", False, str(e)))
        return EXIT_CONFIG
    sizes = ", ".join(f"{n} {w}x{h}" for n, (w, h) in config_mod.variant_sizes(cfg))
    report(CheckStep(f"config {args.config}", True, sizes))
    try:
        with open_camera(cfg.camera, cfg.variants) as camera:
            report(CheckStep("camera open", True, camera.describe()))
            with camera.capture() as frame:
                w, h = frame.size
                report(
                    CheckStep(
                        "camera capture", True, f"{w}x{h} at {frame.captured_at:%H:%M:%S} UTC"
                    )
                )
                renderer = Renderer(cfg.variants)
                try:
                    out = renderer.render(frame)
                finally:
                    renderer.close()
                report(
                    CheckStep(
                        "render",
                        True,
                        ", ".join(f"{r.name} {len(r.data) // 1024} KiB" for r in out),
                    )
                )
    except LivecamError as e:
        report(CheckStep("camera", False, str(e)))
    target = open_target(cfg.target)
    try:
        report(CheckStep("target", True, target.describe()))
        target.check(report)
    except LivecamError as e:
        report(CheckStep("target", False, str(e)))
    finally:
        target.close()
    print("all checks passed" if ok else "some checks failed", flush=True)
    return EXIT_OK if ok else EXIT_FAILURE


def cmd_cost(args: argparse.Namespace) -> int:
    from livecam import cost

    cfg = _load(args.config)
    print(f"livecam cost estimate for {args.config}")
    print(cost.report(cfg, cost.estimate(cfg, args.fps, args.viewers)))
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    if args.dir is not None:
        directory, cleanup = args.dir, False
    else:
        directory, cleanup = Path(tempfile.mkdtemp(prefix="livecam-demo-")), True
    try:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / DEMO_MARKER).write_text(
            "made by `livecam demo`, which may overwrite all here\n"
        )
    except OSError as e:
        raise LivecamError(f"cannot use {directory} for the demo: {e.strerror or e}") from e
    w, h = args.size
    cfg = config_mod.demo(str(directory), interval=args.interval, width=w, height=h)
    stop = threading.Event()
    _stop_on_signals(stop)
    publisher = _publisher(cfg, stop)
    try:
        # The page and a first frame are out before anyone can open the URL: a viewer
        # never meets a 404 for live.json.
        publisher.start()
        publisher.publish_next()
        try:
            server = httpserver.serve(directory, args.bind, args.port)
        except OSError as e:
            reason = e.strerror or str(e)
            raise LivecamError(f"cannot listen on {args.bind}:{args.port}: {reason}") from e
        try:
            print(
                f"livecam demo: open {server.url} (Ctrl-C to stop); publishing into {directory}",
                flush=True,
            )
            publisher.run(stop)
        finally:
            server.shutdown()
            server.server_close()
    finally:
        publisher.close()
        if cleanup:
            shutil.rmtree(directory, ignore_errors=True)
    return EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": cmd_run,
    "once": cmd_once,
    "check": cmd_check,
    "demo": cmd_demo,
    "cost": cmd_cost,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python3 publisher.py` and the `livecam` console script."""
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as e:
        print(f"livecam: config error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    except CameraFatalError as e:
        log.error("%s", e)
        return EXIT_FAILURE
    except LivecamError as e:
        log.error("%s", e)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_OK
