"""Fake picamera2/picamera2.py: the `Picamera2` class, without a camera.

Follows raspberrypi/picamera2's picamera2.py: `global_camera_info()`, `Picamera2(
camera_num)`, `camera_properties`, `sensor_resolution`, `camera_controls` (name ->
(min, max, default)), `create_still_configuration(main=, lores=, raw=, transform=,
colour_space=, buffer_count=, controls=, queue=, ...)` with its defaults and checks,
`configure` filling in `stride` and `framesize`, `start`, `stop`, `close`,
`set_controls`, `capture_request(wait=)`, `captured_request`, `capture_array`,
`cancel_all_and_flush`, `autofocus_cycle`. Frames show `scenario.current.scene`,
turned by the configured Transform as the ISP would, in the configured pixel format.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import libcamera
import numpy as np
from libcamera import controls as lc_controls
from PIL import Image, ImageDraw

from picamera2 import scenario
from picamera2.request import PIL_MODES, RECYCLED, CompletedRequest

RGB_FORMATS = ("XBGR8888", "XRGB8888", "BGR888", "RGB888")
YUV_FORMATS = ("YUV420", "YVU420")
PADDING = 0x5A  # what sits in the bytes between a row's end and its stride
QUADRANTS = ((255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255))  # TL, TR, BL, BR

# Controls every Pi camera has: name -> (min, max, default), as camera_controls shows them.
BASE_CONTROLS: dict[str, tuple[Any, Any, Any]] = {
    "AeEnable": (False, True, True),
    "AeExposureMode": (0, 3, 0),
    "AeMeteringMode": (0, 3, 0),
    "AnalogueGain": (1.0, 22.26, 1.0),
    "AwbEnable": (False, True, True),
    "AwbMode": (0, 7, 0),
    "Brightness": (-1.0, 1.0, 0.0),
    "ColourGains": (0.0, 32.0, None),
    "Contrast": (0.0, 32.0, 1.0),
    "ExposureTime": (114, 694422939, 20000),
    "ExposureValue": (-8.0, 8.0, 0.0),
    "FrameDurationLimits": (100, 1000000000, None),
    "NoiseReductionMode": (0, 4, 0),
    "Saturation": (0.0, 32.0, 1.0),
    "ScalerCrop": ((0, 0, 64, 64), (0, 0, 4056, 3040), (0, 0, 4056, 3040)),
    "Sharpness": (0.0, 16.0, 1.0),
}
AF_CONTROLS: dict[str, tuple[Any, Any, Any]] = {
    "AfMode": (0, 2, 0),
    "AfRange": (0, 2, 0),
    "AfSpeed": (0, 1, 0),
    "AfTrigger": (0, 1, 0),
    "LensPosition": (0.0, 15.0, 1.0),
}


_DEFAULT: Any = object()  # picamera2's `raw={}`: a raw stream unless raw=None


def _align(n: int, to: int) -> int:
    return -(-n // to) * to


class Picamera2:
    """One camera, opened by the constructor (only once at a time, as in libcamera)."""

    @staticmethod
    def global_camera_info() -> list[dict[str, Any]]:
        return [
            {
                "Model": model,
                "Location": 2,
                "Rotation": 180,
                "Id": f"/base/soc/i2c0mux/i2c@{i}/{model}@1a",
                "Num": i,
            }
            for i, model in enumerate(scenario.current.cameras)
        ]

    def __init__(self, camera_num: int = 0, verbose_console: Any = None, tuning: Any = None):
        s = scenario.current
        self.is_open = False
        self.camera: Any = None
        camera_num = self.global_camera_info()[camera_num]["Num"]  # IndexError, as the real one
        if s.busy_opens > 0 or any(c.is_open and c.camera_idx == camera_num for c in s.instances):
            s.busy_opens = max(0, s.busy_opens - 1)
            s.log("open-failed")
            # picamera2 logs libcamera's reason ("Pipeline handler in use by another
            # process") and raises this.
            raise RuntimeError("Camera __init__ sequence did not complete.")
        self.camera_idx = camera_num
        self.model = s.cameras[camera_num]
        spec = scenario.MODELS[self.model]
        self.sensor_resolution = tuple(spec["sensor"])
        self._af = bool(spec["af"])
        self.camera_properties = {
            "Model": self.model,
            "PixelArraySize": self.sensor_resolution,
            "ColorFilterArrangement": 0,
            "Location": 2,
            "Rotation": 180,
        }
        self.camera = object()
        self.is_open = True
        self.started = False
        self.stop_count = 0
        self.configure_count = 0
        self.camera_config: dict[str, Any] | None = None
        self.controls: dict[str, Any] = {}
        self.options: dict[str, Any] = {}
        self._buffers: dict[str, list[np.ndarray]] = {}
        self._lent: set[int] = set()  # buffer indices held by requests
        self._pending_jobs = 0  # capture jobs left queued by a timeout
        s.instances.append(self)
        s.log(f"open {camera_num}")

    # --- properties -------------------------------------------------------------------

    @property
    def camera_controls(self) -> dict[str, tuple[Any, Any, Any]]:
        if not self.is_open:
            return {}
        out = dict(BASE_CONTROLS)
        if self._af:
            out.update(AF_CONTROLS)
        return out

    def camera_configuration(self) -> dict[str, Any] | None:
        return self.camera_config

    def stream_configuration(self, name: str = "main") -> dict[str, Any]:
        assert self.camera_config is not None
        return self.camera_config[name]

    # --- configuration ----------------------------------------------------------------

    @staticmethod
    def _make_initial_stream_config(
        stream_config: dict[str, Any], updates: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        if updates is None:
            return None
        valid = ("format", "size", "stride", "preserve_ar")
        for key, value in updates.items():
            if key not in valid:
                raise ValueError(f"Bad key {key!r}: valid stream configuration keys are {valid}")
            stream_config[key] = value
        return stream_config

    @staticmethod
    def align_stream(stream_config: dict[str, Any], optimal: bool = True) -> None:
        align = 32 if optimal else 2
        w, h = stream_config["size"]
        stream_config["size"] = (w - w % align, h - h % 2)

    def create_still_configuration(
        self,
        main: dict[str, Any] | None = None,
        lores: dict[str, Any] | None = None,
        raw: Any = _DEFAULT,
        transform: Any = None,
        colour_space: Any = None,
        buffer_count: int = 1,
        controls: dict[str, Any] | None = None,
        display: str | None = None,
        encode: str | None = None,
        queue: bool = True,
        sensor: dict[str, Any] | None = None,
        use_case: str = "still",
    ) -> dict[str, Any]:
        if self.camera is None:
            raise RuntimeError("Camera not opened")
        main_cfg = self._make_initial_stream_config(
            {"format": "BGR888", "size": self.sensor_resolution, "preserve_ar": True}, main or {}
        )
        assert main_cfg is not None
        self.align_stream(main_cfg, optimal=False)
        lores_cfg = self._make_initial_stream_config(
            {"format": "YUV420", "size": main_cfg["size"], "preserve_ar": False}, lores
        )
        if lores_cfg is not None:
            self.align_stream(lores_cfg, optimal=False)
        raw_cfg = self._make_initial_stream_config(
            {"format": "SBGGR12_CSI2P", "size": main_cfg["size"]}, {} if raw is _DEFAULT else raw
        )
        merged = {
            "NoiseReductionMode": lc_controls.draft.NoiseReductionModeEnum.HighQuality,
            "FrameDurationLimits": (100, 1000000 * 1000),
        } | (controls or {})
        return {
            "use_case": use_case,
            "transform": libcamera.Transform() if transform is None else transform,
            "colour_space": libcamera.ColorSpace.Sycc() if colour_space is None else colour_space,
            "buffer_count": buffer_count,
            "queue": queue,
            "main": main_cfg,
            "lores": lores_cfg,
            "raw": raw_cfg,
            "controls": merged,
            "sensor": sensor or {},
            "display": display,
            "encode": encode,
        }

    def _check_stream(self, stream: dict[str, Any], name: str) -> None:
        if not isinstance(stream, dict):
            raise RuntimeError(name + " stream should be a dictionary")
        fmt = stream.get("format")
        if name != "raw" and fmt not in RGB_FORMATS + YUV_FORMATS + ("MJPEG",):
            raise RuntimeError(f"Bad format {fmt} in stream {name}")
        size = stream.get("size")
        if not isinstance(size, tuple) or len(size) != 2:
            raise RuntimeError("size in " + name + " stream should be (width, height)")
        if size[0] % 2 or size[1] % 2:
            raise RuntimeError("width and height should be even")

    def _check_controls(self, controls: dict[str, Any]) -> None:
        for name in controls:
            if name not in self.camera_controls:
                raise RuntimeError(f"Control {name} is not advertied by libcamera")

    def configure(self, camera_config: dict[str, Any]) -> None:
        s = scenario.current
        if self.started:
            raise RuntimeError("Camera must be stopped before configuring")
        config = dict(camera_config)
        if not isinstance(config.get("transform"), libcamera.Transform):
            raise RuntimeError("Transform has incorrect type")
        self._check_stream(config["main"], "main")
        lores = config.get("lores")
        if lores is not None:
            if s.single_stream:
                raise RuntimeError(f"Invalid camera configuration: {config}")
            self._check_stream(lores, "lores")
            (mw, mh), (lw, lh) = config["main"]["size"], lores["size"]
            if lw > mw or lh > mh:
                raise RuntimeError("lores stream dimensions may not exceed main stream")
            if s.platform == "vc4" and lores["format"] not in YUV_FORMATS:
                raise RuntimeError("lores stream must be YUV")
        self._check_controls(config.get("controls", {}))
        main = config["main"]
        if s.adjust_main is not None:
            main["size"] = tuple(s.adjust_main)
        for name in ("main", "lores"):
            stream = config.get(name)
            if stream is None:
                continue
            w, h = stream["size"]
            fmt = stream["format"]
            if fmt in YUV_FORMATS:
                stride = _align(w, max(2, s.stride_align))
                stream["framesize"] = stride * h * 3 // 2
            else:
                stride = _align(w * (4 if fmt.startswith("X") else 3), s.stride_align)
                stream["framesize"] = stride * h
            stream["stride"] = stride
        self.camera_config = config
        self.controls = dict(config.get("controls", {}))
        self.configure_count += 1
        count = max(1, int(config["buffer_count"]))
        self._buffers = {
            name: [np.zeros(config[name]["framesize"], np.uint8) for _ in range(count)]
            for name in ("main", "lores")
            if config.get(name) is not None
        }
        self._lent = set()
        s.log(f"configure {main['format']} {main['size'][0]}x{main['size'][1]}")

    def start(self, config: Any = None, show_preview: Any = False) -> None:
        if config is not None:
            self.configure(config)
        if self.camera_config is None:
            raise RuntimeError("Camera has not been configured")
        for name, value in self.controls.items():
            default = self.camera_controls[name][2]
            # libcamera's bindings refuse a float for an integer control.
            if (
                isinstance(default, int)
                and not isinstance(default, bool)
                and isinstance(value, float)
            ):
                raise TypeError(f"Unable to convert {value!r} for control {name}")
        self.started = True
        scenario.current.log("start")

    def stop(self) -> None:
        s = scenario.current
        if self._pending_jobs:
            # stop() is dispatched to the event loop behind the timed-out capture job,
            # which waits for a frame that never comes.
            s.log("stop-stuck")
            s.unstick.wait()
            return
        if self.started:
            self.stop_count += 1
            self.started = False
            s.log("stop")

    def close(self) -> None:
        s = scenario.current
        if not self.is_open:
            return
        if s.hang_on_close:
            s.log("close-stuck")
            s.unstick.wait()
            return
        self.stop()
        self.is_open = False
        self.camera = None
        self.camera_config = None
        s.log("close")

    def set_controls(self, controls: dict[str, Any]) -> None:
        self._check_controls(controls)
        self.controls.update(controls)

    def cancel_all_and_flush(self) -> None:
        self._pending_jobs = 0
        scenario.current.log("flush")

    # --- captures ---------------------------------------------------------------------

    def capture_request(
        self, wait: Any = None, signal_function: Any = None, flush: Any = None
    ) -> CompletedRequest:
        s = scenario.current
        if wait is None or wait is True:
            # Without a timeout a lost camera hangs the caller forever (picamera2 #1295).
            raise AssertionError("capture_request() needs wait=<seconds> in a service")
        if not self.started:
            return self._time_out(wait)
        s.captures += 1
        if s.times_out(s.captures):
            return self._time_out(wait)
        free = [i for i in range(len(self._buffers["main"])) if i not in self._lent]
        if not free:  # every buffer is held by the application: the camera stalls
            return self._time_out(wait)
        if s.frame_time:
            time.sleep(s.frame_time)
        index = free[0]
        self._lent.add(index)
        buffers = {name: bufs[index] for name, bufs in self._buffers.items()}
        assert self.camera_config is not None
        for name, buffer in buffers.items():
            self._fill(buffer, self.camera_config[name], lores=name == "lores")
        metadata = {
            "SensorTimestamp": time.monotonic_ns(),
            "ExposureTime": self.controls.get("ExposureTime") or 20000,
            "AnalogueGain": float(self.controls.get("AnalogueGain") or 1.0),
            "DigitalGain": 1.0,
            "Lux": 400.0,
            "ColourTemperature": 5600,
            "FrameDuration": 33333,
        }
        return CompletedRequest(self, buffers, metadata, index)

    def _time_out(self, wait: float) -> CompletedRequest:
        scenario.current.log("timeout")
        self._pending_jobs += 1
        time.sleep(min(float(wait), 0.05))
        raise FutureTimeout()  # what Job.get_result(timeout=) raises: TimeoutError

    def _recycle(self, request: CompletedRequest) -> None:
        """A released request goes back to a running camera, which refills its buffers;
        after a stop it is dropped and its buffers keep what they hold (picamera2's
        `CompletedRequest.release` requeues only while started, same stop count)."""
        if self.is_open and self.started and request.stop_count == self.stop_count:
            for buffer in request.buffers.values():
                buffer.fill(RECYCLED)
            self._lent.discard(request.index)

    @contextlib.contextmanager
    def captured_request(self, wait: Any = None, flush: Any = None) -> Iterator[CompletedRequest]:
        request = self.capture_request(wait=wait, flush=flush)
        try:
            yield request
        finally:
            request.release()

    def capture_array(
        self, name: str = "main", wait: Any = None, signal_function: Any = None
    ) -> np.ndarray:
        request = self.capture_request(wait=wait)
        try:
            return request.make_array(name)
        finally:
            request.release()

    def capture_metadata(self, wait: Any = None, signal_function: Any = None) -> dict[str, Any]:
        request = self.capture_request(wait=wait)
        try:
            return request.get_metadata()
        finally:
            request.release()

    def autofocus_cycle(self, wait: Any = None, signal_function: Any = None) -> bool:
        if "AfMode" not in self.camera_controls:
            raise RuntimeError("Control AfMode is not advertied by libcamera")
        self.set_controls(
            {"AfMode": lc_controls.AfModeEnum.Auto, "AfTrigger": lc_controls.AfTriggerEnum.Start}
        )
        scenario.current.log("autofocus")
        return True

    # --- what the sensor sees -----------------------------------------------------------

    def _scene(self, size: tuple[int, int], lores: bool) -> Image.Image:
        s = scenario.current
        w, h = size
        if s.scene == "quadrants":
            image = Image.new("RGB", (w, h), QUADRANTS[0])
            draw = ImageDraw.Draw(image)
            draw.rectangle((w // 2, 0, w, h // 2), fill=QUADRANTS[1])
            draw.rectangle((0, h // 2, w // 2, h), fill=QUADRANTS[2])
            draw.rectangle((w // 2, h // 2, w, h), fill=QUADRANTS[3])
        else:
            image = Image.new("RGB", (w, h), s.scene)
        assert self.camera_config is not None
        transform = self.camera_config["transform"]
        if transform.hflip:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if transform.vflip:
            image = image.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
        if lores and s.lores_marker:
            ImageDraw.Draw(image).rectangle(
                (w * 3 // 8, h * 3 // 8, w * 5 // 8, h * 5 // 8), fill=(255, 255, 0)
            )
        return image

    def _fill(self, buffer: np.ndarray, stream: dict[str, Any], lores: bool) -> None:
        """Write one frame into `buffer` in the stream's format, rows padded to stride."""
        w, h = stream["size"]
        stride = stream["stride"]
        fmt = stream["format"]
        buffer.fill(PADDING)
        image = self._scene((w, h), lores)
        if fmt in RGB_FORMATS:
            rgb = np.asarray(image, dtype=np.uint8)
            order = {"RGB": [0, 1, 2], "BGR": [2, 1, 0], "RGBX": [0, 1, 2], "BGRX": [2, 1, 0]}
            mode = PIL_MODES[fmt]
            pixels = rgb[:, :, order[mode]]
            if len(mode) == 4:
                pixels = np.concatenate([pixels, np.full((h, w, 1), 255, np.uint8)], axis=2)
            rows = buffer[: h * stride].reshape((h, stride))
            rows[:, : w * len(mode)] = pixels.reshape((h, w * len(mode)))
            return
        # YUV420: Y rows of `stride`, then U and V rows of stride / 2 (JFIF full range,
        # the sYCC colour space of a still configuration).
        y, u, v = (np.asarray(p) for p in image.convert("YCbCr").split())
        u = np.asarray(Image.fromarray(u).reduce(2))
        v = np.asarray(Image.fromarray(v).reduce(2))
        if fmt == "YVU420":
            u, v = v, u
        cs = stride // 2
        buffer[: h * stride].reshape((h, stride))[:, :w] = y
        at = h * stride
        buffer[at : at + cs * (h // 2)].reshape((h // 2, cs))[:, : w // 2] = u
        at += cs * (h // 2)
        buffer[at : at + cs * (h // 2)].reshape((h // 2, cs))[:, : w // 2] = v
