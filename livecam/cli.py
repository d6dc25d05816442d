"""The command line: parses arguments, wires the parts, turns errors into exit codes.

Exit codes: 0 success, 1 a runtime failure (camera gave up, target unreachable in
`once`/`check`), 2 a configuration or usage error (systemd does not restart on 2),
128 + the signal's number for `once` and `check` stopped by a signal (130: Ctrl-C).
`run` stopped by SIGTERM, SIGINT or SIGHUP exits 0.
"""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import zoneinfo
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, Generic, NoReturn, TypeVar, cast

from livecam import __version__, httpserver, preview
from livecam import config as config_mod
from livecam.camera import open_camera
from livecam.config import Config
from livecam.errors import CameraFatalError, ConfigError, LivecamError
from livecam.loop import Publisher
from livecam.notify import Notifier
from livecam.render import Renderer
from livecam.render.overlay import overlay_for
from livecam.targets import CheckStep, open_target

log = logging.getLogger("livecam")

DEFAULT_CONFIG = "/etc/livecam/config.toml"
EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# After a stop signal the work gets GRACE s to finish the object it is writing, closing
# the camera (which kills a command camera's child) CLOSE_WITHIN s, the atexit functions
# EXIT_WITHIN s: a stop takes under 2 s in every state (docs/reliability.md).
GRACE = 1.0
CLOSE_WITHIN = 0.4
EXIT_WITHIN = 0.2

T = TypeVar("T")


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
        help="viewers watching around the clock, for the GET count and bandwidth (default 0)",
    )
    p.add_argument(
        "--cdn",
        choices=("cloudfront", "cloudflare"),
        help="also price the viewers behind a CDN: CloudFront in front of S3, or Cloudflare "
        "in front of R2",
    )
    p.add_argument(
        "--image-bytes",
        type=_bytes,
        metavar="B",
        help="the measured size of the image a viewer loads (live.json's 'bytes'); default: "
        "estimated from its pixels",
    )
    p = sub.add_parser(
        "timelapse",
        parents=[common],
        help="(re)make one finished day's timelapse from the archive",
        description="Make the H.264 timelapse of one finished day from its archived frames "
        "and publish it (timelapse.mp4, poster.jpeg, the day strip) beside them.",
    )
    _add_config(p)
    p.add_argument("--day", type=_day, required=True, metavar="YYYY-MM-DD", help="the day")
    p.add_argument(
        "--background",
        action="store_true",
        help="as the service runs it: low priority (nice), no progress line",
    )
    p = sub.add_parser(
        "lifecycle",
        parents=[common],
        help="print (or --apply) an S3 lifecycle rule that expires the archive",
        description="Print the S3 lifecycle rule that expires archived objects keep_days + 1 "
        "days after they were written: a backstop to livecam's own retention. With --apply, "
        "set it on the bucket, keeping the bucket's other rules.",
    )
    _add_config(p)
    p.add_argument("--apply", action="store_true", help="set the rule on the bucket")
    p = sub.add_parser(
        "site",
        parents=[common],
        help="publish a grid page of several cameras",
        description="Publish one static page with a live tile per camera listed in the site "
        "file (see site.example.toml). Each camera's live.json is looked for first.",
    )
    p.add_argument(
        "-c", "--config", metavar="SITE", required=True, help="the site file (TOML) to publish"
    )
    p.add_argument(
        "--no-check",
        dest="check",
        action="store_false",
        help="publish without looking for each camera's live.json first",
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
_bytes = _ranged(float, 1, 100_000_000, "a number of bytes")


def _day(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a day as YYYY-MM-DD, got {value!r}") from None


def _size(value: str) -> tuple[int, int]:
    try:
        w, h = (int(x) for x in value.lower().split("x"))
    except ValueError:
        w = h = -1
    lo, hi = config_mod.MIN_SIZE, config_mod.MAX_SIZE
    if not (lo <= w <= hi and lo <= h <= hi):
        raise argparse.ArgumentTypeError(f"must be WIDTHxHEIGHT, each {lo} to {hi}, got {value!r}")
    if w * h > config_mod.MAX_PIXELS:
        raise argparse.ArgumentTypeError(
            f"must be at most {config_mod.MAX_PIXELS} pixels (64 MP), got {value!r}"
        )
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


_signalled = 0  # the first stop signal this process received, for main()'s fast exit


class _Stop:
    """SIGTERM, SIGINT and SIGHUP as a request to stop: `event` is set and `signum` is
    the first signal received (0 while none came). As a context manager, it puts the
    previous handlers back at the end."""

    def __init__(self, event: threading.Event | None = None) -> None:
        self.event = event or threading.Event()
        self.signum = 0
        self.wake = threading.Event()  # a signal came or the work ended
        self._previous = {s: signal.signal(s, self._received) for s in STOP_SIGNALS}

    def _received(self, signum: int, frame: FrameType | None) -> None:
        global _signalled
        if not self.signum:
            self.signum = _signalled = signum
            log.info("received %s, stopping", signal.Signals(signum).name)
        self.event.set()
        self.wake.set()

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention

    def __enter__(self) -> _Stop:
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            if handler is not None:  # None: set outside Python, cannot be put back
                signal.signal(signum, handler)


def _stop_on_signals(stop: threading.Event) -> None:
    _Stop(stop)


class _Worker(Generic[T]):
    """A command's work on a daemon thread, the main thread waiting for it or a signal:
    a stop never waits for a call stalled on the network or a hung camera."""

    def __init__(self, work: Callable[[], T], stop: _Stop) -> None:
        self._stop = stop
        self._outcome: list[tuple[bool, Any]] = []
        self._thread = threading.Thread(target=self._run, args=(work,), name="work", daemon=True)
        self._thread.start()

    def _run(self, work: Callable[[], T]) -> None:
        try:
            self._outcome.append((True, work()))
        except BaseException as e:
            self._outcome.append((False, e))
        finally:
            self._stop.wake.set()

    @property
    def done(self) -> bool:
        return bool(self._outcome)

    def wait(self) -> T | None:
        """What the work returned, or raise what it raised; after a signal, None unless
        the work still ends well within GRACE s (a frame published is a success); still
        busy after that, it is left to die with the process."""
        while not self._stop.wake.wait(1.0):  # a timed wait stays open to signals
            pass
        if not self._stop.signum:
            ok, value = self._outcome[0]
            if not ok:
                raise value
            return cast(T, value)
        self._thread.join(GRACE)
        if not self.done:
            log.warning("still busy %g s after the signal; not waiting any longer", GRACE)
            return None
        ok, value = self._outcome[0]
        if not ok:
            log.warning("while stopping: %s", value)
            return None
        return cast(T, value)


def _close(publisher: Publisher, stop: _Stop) -> None:
    """`publisher.close()`; bounded after a signal, when abandoned work may still hold
    the camera or a hung camera may not close (a command camera's child dies at exit in
    any case)."""
    if not stop.signum:
        publisher.close()
        return

    def close() -> None:
        try:
            publisher.close()
        except Exception:
            log.warning("closing after a stop failed", exc_info=True)

    closer = threading.Thread(target=close, name="close", daemon=True)
    closer.start()
    closer.join(CLOSE_WITHIN)


def _publisher(cfg: Config, stop: threading.Event | None = None) -> Publisher:
    return Publisher(
        cfg,
        lambda: open_camera(cfg.camera, preview.lores_variants(cfg), writable=cfg.overlay.enabled),
        open_target(cfg.target, stop),
        notifier=Notifier(),
    )


def _preview(cfg: Config, publisher: Publisher, secret: bytes) -> preview.Preview | None:
    """The live view started, or None when off or it cannot listen (publishing goes on)."""
    if not cfg.preview.enabled:
        return None
    live = preview.Preview(cfg, publisher.camera, secret)
    try:
        live.start()
    except OSError as e:
        p = cfg.preview
        log.error(
            "live view off: cannot listen on %s:%d (preview.bind, preview.port): %s",
            p.bind,
            p.port,
            e.strerror or e,
        )
        live.close()
        return None
    publisher.on_published = live.published
    return live


def cmd_run(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    secret = preview.load_secret(cfg.preview) if cfg.preview.enabled else b""
    with _Stop() as stop:
        publisher = _publisher(cfg, stop.event)
        live = _preview(cfg, publisher, secret)
        worker = _Worker(lambda: publisher.run(stop.event), stop)
        try:
            worker.wait()
        finally:
            if live is not None:
                live.close()
            _close(publisher, stop)
    return EXIT_OK


def cmd_once(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    with _Stop() as stop:
        publisher = _publisher(cfg, stop.event)
        publisher.camera.stop = stop.event  # a capture in progress gives up on a signal

        def once() -> str:
            publisher.start()
            return publisher.publish_next(force=True).summary()

        worker = _Worker(once, stop)
        try:
            summary = worker.wait()
        finally:
            _close(publisher, stop)
    if summary is None:
        return stop.exit_code
    print(summary)
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
    if cfg.preview.enabled:
        try:
            preview.load_secret(cfg.preview)
            report(CheckStep("live view", True, preview.describe(cfg)))
        except ConfigError as e:
            report(CheckStep("live view", False, str(e)))
    with _Stop() as stop:
        _Worker(lambda: _check_parts(cfg, report, stop.event), stop).wait()
    if stop.signum:
        print(f"interrupted by {signal.Signals(stop.signum).name}", flush=True)
        return stop.exit_code
    print("all checks passed" if ok else "some checks failed", flush=True)
    return EXIT_OK if ok else EXIT_FAILURE


def _check_parts(cfg: Config, report: Callable[[CheckStep], None], stop: threading.Event) -> None:
    """`check`'s camera, render and target steps, each reported."""
    try:
        with open_camera(cfg.camera, preview.lores_variants(cfg)) as camera:
            report(CheckStep("camera open", True, camera.describe()))
            with camera.capture() as frame:
                w, h = frame.size
                report(
                    CheckStep(
                        "camera capture", True, f"{w}x{h} at {frame.captured_at:%H:%M:%S} UTC"
                    )
                )
                renderer = Renderer(cfg.variants, overlay=overlay_for(cfg.overlay, cfg.site.title))
                out = renderer.render(frame)
                report(
                    CheckStep(
                        "render",
                        True,
                        ", ".join(f"{r.name} {len(r.data) // 1024} KiB" for r in out),
                    )
                )
    except LivecamError as e:
        report(CheckStep("camera", False, str(e)))
    target = open_target(cfg.target, stop)
    try:
        report(CheckStep("target", True, target.describe()))
        target.check(report)
    except LivecamError as e:
        report(CheckStep("target", False, str(e)))
    finally:
        target.close()


def cmd_cost(args: argparse.Namespace) -> int:
    from livecam import cost

    cfg = _load(args.config)
    print(f"livecam cost estimate for {args.config}")
    estimate = cost.estimate(cfg, args.fps, args.viewers)
    print(cost.report(cfg, estimate))
    if (args.viewers or args.cdn) and cfg.target.kind in ("local", "s3"):
        v = cost.viewing(cfg, estimate, image_bytes=args.image_bytes, cdn=args.cdn)
        print(cost.viewers_report(cfg, estimate, v, args.cdn))
    return EXIT_OK


def cmd_timelapse(args: argparse.Namespace) -> int:
    from livecam.history import timelapse

    cfg = _load(args.config)
    tz = zoneinfo.ZoneInfo(cfg.archive.timezone)
    if args.day >= dt.datetime.now(tz).date():
        print(
            f"livecam: error: --day: {args.day} has not ended yet in {cfg.archive.timezone} "
            "(timelapses are made of finished days)",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    if args.background:
        timelapse.background()
    progress = None if args.background else _Progress(f"timelapse {args.day}")
    with _Stop() as stop:
        target = open_target(cfg.target, stop.event)
        try:
            cache = cfg.target.cache_control
            work = _Worker(
                lambda: timelapse.make(target, cfg.archive, args.day, progress, cache), stop
            )
            result = work.wait()
        finally:
            target.close()
    if result is None:
        return stop.exit_code
    print(
        f"published {result.key}: {result.frames} frames, {result.width}x{result.height}, "
        f"{result.bytes / 1e6:.1f} MB",
        flush=True,
    )
    return EXIT_OK


def cmd_lifecycle(args: argparse.Namespace) -> int:
    import json

    from livecam.history.archive import LIFECYCLE_ID, lifecycle_rule
    from livecam.targets.s3 import S3Target

    cfg = _load(args.config)
    if cfg.target.kind != "s3":
        raise ConfigError('target.kind: lifecycle rules are for kind = "s3" buckets only')
    if not cfg.archive.keep_days:
        raise ConfigError("archive.keep_days: 0 keeps every day; a lifecycle rule needs >= 1")
    rule = lifecycle_rule(cfg.target.prefix, cfg.archive.keep_days)
    print(json.dumps({"Rules": [rule]}, indent=2))
    if not args.apply:
        return EXIT_OK
    target = S3Target(cfg.target)
    try:
        rules = [r for r in target.lifecycle_rules() if r.get("ID") != LIFECYCLE_ID]
        target.put_lifecycle_rules([*rules, rule])
    finally:
        target.close()
    print(f"applied to s3://{cfg.target.bucket} ({len(rules)} other rule(s) kept)")
    return EXIT_OK


class _Progress:
    """A progress line: rewritten in place on a terminal, a line per tenth otherwise."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.tty = sys.stdout.isatty()
        self.shown = -1

    def __call__(self, done: int, total: int) -> None:
        tenth = done * 10 // max(1, total)
        if self.tty:
            end = "\n" if done == total else ""
            print(f"\r{self.what}: {done}/{total} frames", end=end, flush=True)
        elif tenth != self.shown:
            self.shown = tenth
            print(f"{self.what}: {done}/{total} frames", flush=True)


def cmd_site(args: argparse.Namespace) -> int:
    from livecam import grid

    site = grid.load(args.config)
    if warning := config_mod.insecure_secrets(Config(target=site.target, source_path=args.config)):
        log.warning("%s", warning)
    target = open_target(site.target)
    try:
        if args.check:
            for line in grid.probe(site, target):
                print(line, flush=True)
        changed = grid.publish(site, target)
    finally:
        target.close()
    where = target.describe()
    count = len(site.cameras)
    print(f"published {', '.join(changed)} to {where}" if changed else f"up to date on {where}")
    print(f"the grid of {count} camera{'s' if count != 1 else ''} is {grid.PAGE} there")
    if others := grid.origins(site):
        print(f"it reads from {', '.join(others)}: they must allow it (CORS, docs/grid.md)")
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
    "timelapse": cmd_timelapse,
    "lifecycle": cmd_lifecycle,
    "site": cmd_site,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python3 publisher.py` and the `livecam` console script."""
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    try:
        code = COMMANDS[args.command](args)
        if _signalled:
            _exit_now(code)
        return code
    except ConfigError as e:
        print(f"livecam: config error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    except CameraFatalError as e:
        log.error("%s", e)
        return EXIT_FAILURE
    except LivecamError as e:
        log.error("%s", e)
        return EXIT_FAILURE
    except KeyboardInterrupt:  # Ctrl-C before the command set up its signal handling
        return 128 + signal.SIGINT


def _exit_now(code: int) -> NoReturn:
    """Exit without the interpreter's teardown, which takes most of a second once boto3
    is loaded (more on a Pi): a stopped service has cleaned up already. The atexit
    functions still run (they kill a command camera's child, close picamera2), bounded:
    a hung camera's close must not hold the exit."""
    closer = threading.Thread(target=atexit._run_exitfuncs, name="atexit", daemon=True)
    closer.start()
    closer.join(EXIT_WITHIN)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
