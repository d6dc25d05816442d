"""`source = "picamera2"`: a Raspberry Pi camera through picamera2 and libcamera.

The camera is opened and configured once and then streams. Each capture takes the
next completed request (`capture_request(wait=camera.timeout)`) and lends its buffer
to Pillow without a copy; the request goes back to the camera when the publisher calls
`Frame.release()`. Re-creating `Picamera2` per frame leaks memory in picamera2
(issues #958, #887), so only a failure closes and reopens it (the publisher does that).

What this relies on, from picamera2's source (picamera2/picamera2.py, request.py):
the main stream may be YUV420 (`check_stream_config`), in the full-range sYCC colour
space that `create_still_configuration` asks for by default, JPEG's own; its planes
are laid out as `CompletedRequest.save` reads them (see livecam/camera/yuv.py);
`MappedArray(request, name, reshape=False)` is the buffer itself, valid while the
request is held; the RGB formats map to Pillow as `_get_pil_mode` says; a capture given `wait=`
raises `TimeoutError`, after which `cancel_all_and_flush()` lets `close()` proceed.
picamera2 is imported here only, so the rest of livecam runs where it is missing.
"""

from __future__ import annotations

import atexit
import inspect
import logging
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from PIL import Image

from livecam.camera.base import Camera, Frame, Planes, call_within
from livecam.camera.yuv import yuv420_arrays
from livecam.config import CameraConfig, VariantConfig
from livecam.errors import CameraError

log = logging.getLogger(__name__)

# The main stream's pixel format: YUV420 is what the renderer encodes, so a frame
# needs no conversion. Should a camera give RGB instead, Pillow maps it (the mode for
# each: picamera2's `_get_pil_mode`).
MAIN_FORMAT = "YUV420"
RAW_MODES = {"XBGR8888": "RGBX", "XRGB8888": "BGRX", "BGR888": "RGB", "RGB888": "BGR"}
# A Pi 4 and earlier only allow YUV for lores (`check_camera_config`); a Pi 5 takes it too.
LORES_FORMAT = "YUV420"
# Variants with at most this share of the main stream's pixels come from the lores
# stream, scaled by the ISP instead of the CPU; a larger lores would cost nearly a
# second main buffer of memory to save one resize.
SMALL_SHARE = 0.5
# One buffer lent to the renderer, one for the camera to fill meanwhile. With
# `queue=False` picamera2 keeps none back, and every capture is a frame that completed
# after the call: never a stale one.
BUFFER_COUNT = 2

NOT_INSTALLED = (
    'camera.source = "picamera2" needs picamera2, which this Python cannot import '
    "({error}). On Raspberry Pi OS: `sudo apt install python3-picamera2`, and make the "
    "virtual environment with `python3 -m venv --system-site-packages` so that it sees "
    'apt\'s picamera2 (scripts/install-service.sh does both). Or use source = "command".'
)
NO_LIBCAMERA = (
    "picamera2 is installed but libcamera's Python bindings are not ({error}); pip's "
    "picamera2 does not include them. Use apt's: `sudo apt install python3-picamera2`, "
    "in a virtual environment made with `python3 -m venv --system-site-packages`."
)


def _import_picamera2() -> tuple[Any, Any]:
    """The picamera2 and libcamera modules, or a `CameraError` that says what to install."""
    try:
        import picamera2  # imports libcamera itself: a pip-only install fails here
    except ImportError as e:
        template = NO_LIBCAMERA if e.name == "libcamera" else NOT_INSTALLED
        raise CameraError(template.format(error=e)) from e
    try:
        import libcamera
    except ImportError as e:
        raise CameraError(NO_LIBCAMERA.format(error=e)) from e
    return picamera2, libcamera


def lores_size(main: tuple[int, int], variants: Sequence[VariantConfig]) -> tuple[int, int] | None:
    """The lores stream size for the variants much smaller than `main`: the largest of
    them (each already has main's aspect ratio), rounded up to even. None without any."""
    w, h = main
    small = [v.size_for(w, h) for v in variants]
    small = [s for s in small if s[0] * s[1] <= SMALL_SHARE * w * h]
    if not small:
        return None
    lw = max(s[0] for s in small)
    lh = max(s[1] for s in small)
    lw, lh = lw + lw % 2, lh + lh % 2  # YUV420 halves both for its chroma planes
    return min(lw, w - w % 2), min(lh, h - h % 2)


def _metadata(request: Any) -> dict[str, Any]:
    """The request's metadata (exposure, gain, lux, ...): the overlay's fields; none at all
    rather than a failed frame when picamera2 cannot give it."""
    try:
        return dict(request.get_metadata())
    except Exception as e:
        log.debug("no metadata with the frame: %s", e)
        return {}


class _Loan:
    """A completed request lent out with a frame, and the buffer mappings it holds."""

    def __init__(self, request: Any) -> None:
        self.request = request
        self.mappings: list[Any] = []  # entered MappedArrays; exited before the release


class PiCamera(Camera):
    """Pi camera `camera.camera_num`, streaming `camera.width` x `camera.height`."""

    def __init__(
        self, cfg: CameraConfig, variants: Sequence[VariantConfig] = (), writable: bool = False
    ) -> None:
        picamera2, self._libcamera = _import_picamera2()
        self.cfg = cfg
        self._mapped_array = picamera2.MappedArray
        # A read-only map skips a cache write-back on unmap; picamera2 before its
        # allocators (request.py's old _MappedBuffer) has no `write=`. `writable`: the
        # overlay draws into the frame in place (and restores it), which needs the
        # write-back, or the CPU's stale cache lines could land on a later frame.
        self._writable = writable
        self._map_args: dict[str, Any] = {"reshape": False}
        if "write" in inspect.signature(picamera2.MappedArray).parameters:
            self._map_args["write"] = writable
        self._picam2: Any = None
        self._loans: list[_Loan] = []
        self._lock = threading.Lock()
        self._size = (0, 0)
        self._stride = 0
        self._format = MAIN_FORMAT
        self._lores: tuple[tuple[int, int], int] | None = None
        try:
            cameras = picamera2.Picamera2.global_camera_info()
        except Exception as e:  # libcamera's camera manager did not start
            raise CameraError(f"cannot list the cameras: {type(e).__name__}: {e}") from e
        if not cameras:
            raise CameraError(
                "no camera found: check the ribbon cable (contacts, orientation, both ends) "
                "and that `rpicam-hello --list-cameras` lists it"
            )
        num = cfg.camera_num
        if num >= len(cameras):
            found = ", ".join(f"{i}: {c.get('Model', '?')}" for i, c in enumerate(cameras))
            raise CameraError(f"camera.camera_num is {num}, but the cameras are {found}")
        self.model = str(cameras[num].get("Model", "unknown"))
        try:
            self._picam2 = picamera2.Picamera2(num)
        except Exception as e:
            raise CameraError(
                f"cannot open camera {num} ({self.model}): {e}; if another program holds "
                "it (rpicam-*, a second livecam), stop that one"
            ) from e
        try:
            self._start(variants)
        except BaseException as e:
            try:
                self.close()
            except CameraError as close_error:
                log.debug("closing after a failed start: %s", close_error)
            if isinstance(e, Exception) and not isinstance(e, CameraError):
                # Whatever picamera2 raises, the publisher must see a camera failure.
                raise CameraError(
                    f"cannot set up camera {num} ({self.model}): {type(e).__name__}: {e}"
                ) from e
            raise

    # --- set-up --------------------------------------------------------------------

    def _start(self, variants: Sequence[VariantConfig]) -> None:
        cfg, picam2 = self.cfg, self._picam2
        controls = self._controls(dict(picam2.camera_controls))
        main = (cfg.width - cfg.width % 2, cfg.height - cfg.height % 2)
        lores = lores_size(main, variants) if cfg.lores else None
        try:
            self._configure(main, lores, controls)
        except CameraError as e:
            if lores is None:
                raise
            # A camera without a second output (a USB camera through libcamera)?
            try:
                self._configure(main, None, controls)
            except CameraError:
                raise e from None
            log.warning("no lores stream (%s); small variants are scaled on the CPU", e)
        try:
            picam2.start()
        except Exception as e:
            raise CameraError(f"cannot start camera {cfg.camera_num} ({self.model}): {e}") from e
        if cfg.autofocus == "auto" and "AfMode" in controls:
            self._focus_once()

    def _configure(
        self,
        main: tuple[int, int],
        lores: tuple[int, int] | None,
        controls: dict[str, Any],
    ) -> None:
        cfg, picam2 = self.cfg, self._picam2
        # The ISP rotates and flips for free; 180 degrees is both flips.
        turn = cfg.rotation == 180
        transform = self._libcamera.Transform(
            hflip=int(cfg.hflip ^ turn), vflip=int(cfg.vflip ^ turn)
        )
        try:
            config = picam2.create_still_configuration(
                main={"format": MAIN_FORMAT, "size": main},
                lores=None if lores is None else {"format": LORES_FORMAT, "size": lores},
                buffer_count=BUFFER_COUNT,
                transform=transform,
                controls=controls,
                queue=False,
            )
            picam2.configure(config)
        except Exception as e:
            raise CameraError(
                f"camera {cfg.camera_num} ({self.model}) refused the configuration: {e}"
            ) from e
        actual = picam2.camera_configuration()
        stream = actual["main"]
        self._format = str(stream["format"])
        self._size = (int(stream["size"][0]), int(stream["size"][1]))
        self._stride = int(stream["stride"])
        if self._format not in ("YUV420", *RAW_MODES):
            raise CameraError(
                f"camera {cfg.camera_num} ({self.model}) delivers {self._format} frames, "
                'which livecam cannot read; for a USB webcam use source = "command" '
                '(e.g. command = "fswebcam -q --no-banner -")'
            )
        if self._size != main:
            log.info("the camera adjusted the capture size from %dx%d to %dx%d", *main, *self._size)
        self._lores = None
        if lores is not None and actual.get("lores"):
            lo = actual["lores"]
            if lo["format"] == LORES_FORMAT:
                self._lores = ((int(lo["size"][0]), int(lo["size"][1])), int(lo["stride"]))
            else:
                log.warning("ignoring a lores stream in %s, not %s", lo["format"], LORES_FORMAT)

    def _controls(self, available: Mapping[str, Any]) -> dict[str, Any]:
        """The libcamera controls to start with: camera settings and `camera.controls`,
        checked against what this camera has."""
        cfg = self.cfg
        wanted: dict[str, tuple[str, Any]] = {}  # control -> (config key, value)
        if cfg.exposure_time:
            wanted["ExposureTime"] = ("camera.exposure_time", cfg.exposure_time)
        if cfg.analogue_gain:
            wanted["AnalogueGain"] = ("camera.analogue_gain", cfg.analogue_gain)
        for name, value in cfg.controls.items():
            wanted[name] = (f"camera.controls.{name}", value)
        out: dict[str, Any] = {}
        for name, (key, value) in wanted.items():
            if name not in available:
                raise CameraError(
                    f"{key}: {self.model} has no control {name}; "
                    f"it has: {', '.join(sorted(available))}"
                )
            out[name] = self._checked(key, value, available[name])
        out.update(self._focus(available))
        return out

    def _checked(self, key: str, value: Any, info: Any) -> Any:
        """`value` in the type the control takes (libcamera's bindings refuse 2.0 for an
        integer control); a value out of the camera's range is only worth a warning."""
        lo: Any
        hi: Any
        default: Any
        lo, hi, default = info if isinstance(info, tuple) and len(info) == 3 else (None,) * 3
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise CameraError(f"{key}: must be true or false, got {value!r}")
        elif isinstance(default, int):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise CameraError(f"{key}: must be a whole number, got {value!r}")
            if isinstance(value, float):
                if not value.is_integer():
                    raise CameraError(f"{key}: must be a whole number, got {value!r}")
                value = int(value)
        elif isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        numbers = all(isinstance(x, int | float) and not isinstance(x, bool) for x in (lo, hi))
        if numbers and isinstance(value, int | float) and lo < hi and not lo <= value <= hi:
            log.warning("%s = %s is outside %s..%s; libcamera will clamp it", key, value, lo, hi)
        return value

    def _focus(self, available: Mapping[str, Any]) -> dict[str, Any]:
        cfg = self.cfg
        if cfg.autofocus == "default":
            return {}
        if "AfMode" not in available:
            log.warning(
                "camera.autofocus = %r ignored: %s has no autofocus", cfg.autofocus, self.model
            )
            return {}
        af = self._libcamera.controls.AfModeEnum
        if cfg.autofocus == "continuous":
            return {"AfMode": af.Continuous}
        if cfg.autofocus == "auto":
            return {"AfMode": af.Auto}
        out: dict[str, Any] = {"AfMode": af.Manual}
        if cfg.lens_position is not None:
            out["LensPosition"] = float(cfg.lens_position)
        return out

    def _focus_once(self) -> None:
        """`autofocus = "auto"`: one focus sweep at start, then the lens stays put."""
        try:
            focused = self._picam2.autofocus_cycle(wait=self.cfg.timeout)
        except Exception as e:  # a sweep that fails is no reason not to publish
            log.warning("autofocus did not finish: %s", e)
            return
        if focused:
            log.info("autofocus: in focus")
        else:
            log.warning("autofocus: could not focus; the lens stays where the sweep ended")

    # --- frames --------------------------------------------------------------------

    def describe(self) -> str:
        cfg = self.cfg
        sensor = ""
        if self._picam2 is not None:
            sw, sh = self._picam2.sensor_resolution
            sensor = f", sensor {sw}x{sh}"
        text = f"Pi camera {cfg.camera_num}: {self.model}{sensor}; frames {self._size[0]}x"
        text += f"{self._size[1]} {self._format}"
        if self._lores is not None:
            (lw, lh), _ = self._lores
            text += f", lores {lw}x{lh} {LORES_FORMAT}"
        if cfg.rotation or cfg.hflip or cfg.vflip:
            turns = [f"rotation {cfg.rotation}"] if cfg.rotation else []
            turns += [name for name in ("hflip", "vflip") if getattr(cfg, name)]
            text += f" ({', '.join(turns)})"
        return text

    def capture(self) -> Frame:
        picam2 = self._picam2
        if picam2 is None:
            raise CameraError("the camera is closed")
        timeout = self.cfg.timeout
        try:
            request = picam2.capture_request(wait=timeout)
        except TimeoutError as e:
            raise CameraError(
                f"no frame within {timeout:g} s (camera.timeout); if the log shows "
                '"Camera frontend has timed out", check the ribbon cable and the power supply'
            ) from e
        except Exception as e:
            raise CameraError(f"capture failed: {type(e).__name__}: {e}") from e
        captured_at = datetime.now(UTC)
        loan = _Loan(request)
        self._loans.append(loan)
        try:
            image, planes = self._main(loan)
            lores = self._planes(loan, "lores", *self._lores) if self._lores else None
        except Exception as e:
            self._give_back(loan)
            raise CameraError(f"could not read the frame: {type(e).__name__}: {e}") from e
        except BaseException:
            self._give_back(loan)
            raise
        return Frame(
            image,
            captured_at,
            planes,
            lores,
            metadata=_metadata(loan.request),
            _release=lambda: self._give_back(loan),
        )

    def _main(self, loan: _Loan) -> tuple[Image.Image | None, Planes | None]:
        """The frame as YUV420 planes, or as an image for the RGB formats."""
        (w, h), stride = self._size, self._stride
        if self._format == "YUV420":
            return None, self._planes(loan, "main", self._size, stride)
        mode = RAW_MODES[self._format]
        mapping = self._mapped_array(loan.request, "main", **self._map_args)
        if mode == "RGBX":
            # In place: the image is the camera's buffer until the frame is released.
            buffer = mapping.__enter__().array
            loan.mappings.append(mapping)
            return Image.frombuffer("RGBX", (w, h), buffer, "raw", mode, stride, 1), None
        with mapping as m:  # the other orders need Pillow to unpack them: one copy
            return Image.frombuffer("RGB", (w, h), m.array, "raw", mode, stride, 1), None

    def _planes(self, loan: _Loan, name: str, size: tuple[int, int], stride: int) -> Planes:
        """A YUV420 stream's planes, views of the camera's buffer until the frame is
        released: nothing converted."""
        mapping = self._mapped_array(loan.request, name, **self._map_args)
        buffer = mapping.__enter__().array
        loan.mappings.append(mapping)
        planes = yuv420_arrays(buffer, size, stride)
        if not self._writable:  # the renderer copies what it must draw on
            for plane in planes:
                plane.setflags(write=False)
        return planes

    def _give_back(self, loan: _Loan) -> None:
        """Return a lent request to the camera; once, whoever asks first."""
        with self._lock:  # the renderer's thread and close() may both ask
            request, loan.request = loan.request, None
            if request is None:
                return
            self._loans.remove(loan)
        mappings, loan.mappings = loan.mappings, []
        try:
            for mapping in mappings:
                try:
                    mapping.__exit__(None, None, None)
                except BufferError:
                    # picamera2's plain mmap (not its default DmaAllocator) cannot unmap
                    # while the image lives; the map then goes when the image does.
                    log.debug("camera buffer still referenced at release")
            request.release()
        except Exception as e:  # nothing to do about it but not leak the next ones
            log.warning("could not return a frame buffer to the camera: %s", e)

    # --- shutdown ------------------------------------------------------------------

    def close(self) -> None:
        """Stop and close the camera; safe after a hung capture and safe to call twice.

        Raises `CameraError` when picamera2 fails or does not return within
        `camera.timeout` (the camera then stays busy until the process restarts)."""
        picam2, self._picam2 = self._picam2, None
        if picam2 is None:
            return
        errors: list[str] = []

        def give_back() -> None:
            for loan in list(self._loans):
                self._give_back(loan)

        def shutdown() -> None:
            # After a timed-out capture its job is still queued: cancel it, or stop()
            # waits behind it (picamera2's docstring of cancel_all_and_flush). Lent
            # frames go back only once stopped: a running camera would refill them
            # while a stop's last render may still read them.
            flush = getattr(picam2, "cancel_all_and_flush", None)
            for step in (flush, picam2.stop, give_back, picam2.close):
                if step is None:
                    continue
                try:
                    step()
                except Exception as e:
                    errors.append(f"{getattr(step, '__name__', step)}: {e}")

        try:
            call_within(shutdown, self.cfg.timeout, "closing the camera")
        except CameraError:
            atexit.unregister(picam2.close)  # picamera2 registers it; do not hang the exit
            raise CameraError(
                f"camera {self.cfg.camera_num} did not close within {self.cfg.timeout:g} s; "
                "it stays busy until the process restarts"
            ) from None
        if errors:
            raise CameraError("closing the camera: " + "; ".join(errors))
