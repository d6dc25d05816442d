"""Config validation: every bad config ends in one line naming the key, exit code 2."""

from __future__ import annotations

import dataclasses
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from livecam import cli, config
from livecam.errors import ConfigError

from .conftest import PUBLISHER, ROOT, run_cli, write_config

LOCAL = '[target]\nkind = "local"\npath = "/tmp/livecam-never-written"\n'

BAD_CONFIGS = [
    # (id, TOML, the start of the message after "config error: ")
    (
        "interval-string",
        '[camera]\ninterval = "fast"\n' + LOCAL,
        'camera.interval: must be a number >= 0 and <= 86400, got "fast"',
    ),
    (
        "interval-negative",
        "[camera]\ninterval = -1\n" + LOCAL,
        "camera.interval: must be a number >= 0 and <= 86400, got -1",
    ),
    (
        "interval-bool",
        "[camera]\ninterval = true\n" + LOCAL,
        "camera.interval: must be a number >= 0 and <= 86400, got true",
    ),
    (
        "source-unknown",
        '[camera]\nsource = "webcam"\n' + LOCAL,
        'camera.source: must be one of "picamera2", "test", "command", got "webcam"',
    ),
    (
        "width-too-small",
        "[camera]\nwidth = 4\n" + LOCAL,
        "camera.width: must be an integer from 16 to 9152, got 4",
    ),
    (
        "width-float",
        "[camera]\nwidth = 800.5\n" + LOCAL,
        "camera.width: must be an integer from 16 to 9152, got 800.5",
    ),
    (
        "height-string",
        '[camera]\nheight = "720"\n' + LOCAL,
        'camera.height: must be an integer from 16 to 9152, got "720"',
    ),
    (
        "width-past-the-largest-sensor",
        "[camera]\nwidth = 16384\nheight = 16384\n" + LOCAL,
        "camera.width: must be an integer from 16 to 9152, got 16384",
    ),
    (
        "pixels-past-the-largest-sensor",
        "[camera]\nwidth = 9152\nheight = 9152\n" + LOCAL,
        "camera.height: width x height must be at most 63551488 pixels (64 MP, 9152x6944: "
        "the largest Pi camera), got 9152x9152",
    ),
    (
        "variant-box-past-the-largest-sensor",
        '[[variants]]\nname = "a.jpeg"\nwidth = 16384\n' + LOCAL,
        "variants[0].width: must be an integer from 16 to 9152, got 16384",
    ),
    (
        "status-interval-flood",
        "[publish]\nstatus_interval = 0.000001\n" + LOCAL,
        "publish.status_interval: must be 0 (off) or a number >= 10 and <= 86400, got 1e-06",
    ),
    (
        "quality-out-of-range",
        "[camera]\nquality = 101\n" + LOCAL,
        "camera.quality: must be an integer from 1 to 100, got 101",
    ),
    (
        "rotation-90",
        "[camera]\nrotation = 90\n" + LOCAL,
        "camera.rotation: must be one of 0, 180, got 90",
    ),
    (
        "hflip-string",
        '[camera]\nhflip = "yes"\n' + LOCAL,
        'camera.hflip: must be true or false, got "yes"',
    ),
    (
        "camera-unknown-key",
        "[camera]\nfps = 5\n" + LOCAL,
        "camera.fps: unknown key (allowed: source, width",
    ),
    (
        "command-missing",
        '[camera]\nsource = "command"\n' + LOCAL,
        'camera.command: is required when source = "command"',
    ),
    (
        "unknown-section",
        "[server]\nport = 1\n" + LOCAL,
        "server: unknown section (allowed: camera, variants, target, publish, site",
    ),
    ("target-missing", '[camera]\nsource = "test"\n', "target: is required"),
    (
        "target-kind-ftp",
        '[target]\nkind = "ftp"\n',
        'target.kind: must be one of "local", "s3", "sftp", "webdav", got "ftp"',
    ),
    (
        "local-without-path",
        '[target]\nkind = "local"\n',
        'target.path: is required when kind = "local"',
    ),
    ("s3-without-bucket", '[target]\nkind = "s3"\n', 'target.bucket: is required when kind = "s3"'),
    (
        "s3-key-on-local",
        LOCAL + 'bucket = "cam"\n',
        'target.bucket: only applies with kind = "s3" (kind is "local")',
    ),
    (
        "prefix-escapes",
        '[target]\nkind = "s3"\nbucket = "cam"\nprefix = "../other/"\n',
        "target.prefix: must be a relative key prefix",
    ),
    (
        "prefix-absolute",
        '[target]\nkind = "s3"\nbucket = "cam"\nprefix = "/cam1/"\n',
        "target.prefix: must be a relative key prefix",
    ),
    (
        "endpoint-not-url",
        '[target]\nkind = "s3"\nbucket = "cam"\nendpoint_url = "minio:9000"\n',
        'target.endpoint_url: must be an http:// or https:// URL, got "minio:9000"',
    ),
    (
        "endpoint-password-not-shown",
        '[target]\nkind = "s3"\nbucket = "cam"\nendpoint_url = "ftp://me:pw-1234@h:21"\n',
        'target.endpoint_url: must be an http:// or https:// URL, got "ftp://***@h:21"',
    ),
    (
        "path-under-unknown-user",
        '[target]\nkind = "local"\npath = "~livecam-no-such-user/live"\n',
        "target.path: starts with ~ but names no user with a home, got "
        '"~livecam-no-such-user/live"',
    ),
    (
        "secret-without-key",
        '[target]\nkind = "s3"\nbucket = "cam"\nsecret_access_key = "x"\n',
        "target.access_key_id: access_key_id and secret_access_key must be set together",
    ),
    (
        "variant-traversal",
        '[[variants]]\nname = "../etc/live.jpeg"\n' + LOCAL,
        "variants[0].name: must be a plain file name",
    ),
    (
        "variant-not-jpeg",
        '[[variants]]\nname = "live.png"\n' + LOCAL,
        "variants[0].name: must be a plain file name",
    ),
    (
        "variant-without-name",
        "[[variants]]\nwidth = 800\n" + LOCAL,
        "variants[0].name: is required",
    ),
    (
        "variant-duplicate",
        '[[variants]]\nname = "a.jpeg"\n[[variants]]\nname = "a.jpeg"\n' + LOCAL,
        'variants[1].name: "a.jpeg" is used by another variant',
    ),
    (
        "variant-every-zero",
        '[[variants]]\nname = "a.jpeg"\nevery = 0\n' + LOCAL,
        "variants[0].every: must be an integer from 1 to 100000, got 0",
    ),
    (
        "variants-not-array",
        'variants = "live.jpeg"\n' + LOCAL,
        "variants: must be an array of tables ([[variants]])",
    ),
    ("camera-not-table", "camera = 5\n" + LOCAL, "camera: must be a table ([camera]), got 5"),
    (
        "max-age-below-interval",
        "[camera]\ninterval = 30\n[publish]\nmax_age = 10\n" + LOCAL,
        "publish.max_age: must be >= camera.interval (30), got 10",
    ),
    (
        "site-link-javascript",
        '[site]\nlink = "javascript:alert(1)"\n' + LOCAL,
        'site.link: must be an http:// or https:// URL, got "javascript:alert(1)"',
    ),
    (
        "site-title-control-char",
        '[site]\ntitle = "a\\u0007b"\n' + LOCAL,
        "site.title: must not contain control characters",
    ),
    (
        "controls-bad-value",
        '[camera.controls]\nSharpness = "high"\n' + LOCAL,
        'camera.controls: Sharpness must be a number, true/false or a list of numbers, got "high"',
    ),
    (
        "controls-dedicated-key",
        "[camera.controls]\nExposureTime = 10000\n" + LOCAL,
        "camera.controls: ExposureTime is set with camera.exposure_time, not here",
    ),
    (
        "controls-af-mode",
        "[camera.controls]\nAfMode = 2\n" + LOCAL,
        "camera.controls: AfMode is set with camera.autofocus, not here",
    ),
    (
        "timeout-below-exposure",
        "[camera]\nexposure_time = 20000000\ntimeout = 10\n" + LOCAL,
        "camera.timeout: must be longer than camera.exposure_time (20 s), got 10",
    ),
    ("invalid-toml", "[camera\nwidth = 1\n", "invalid TOML: "),
    (
        "overlay-font-missing",
        '[overlay]\nfont = "/nonexistent/Font.ttf"\n' + LOCAL,
        "overlay.font: must be a .ttf, .otf or .ttc font file: no such file, "
        'got "/nonexistent/Font.ttf"',
    ),
    (
        "overlay-font-not-a-font",
        f'[overlay]\nfont = "{ROOT / "README.md"}"\n' + LOCAL,
        "overlay.font: must be a .ttf, .otf or .ttc font file: cannot read it as a font",
    ),
    (
        "overlay-unknown-field",
        '[overlay]\ntext = "{title} {temperature}"\n' + LOCAL,
        "overlay.text: has an unknown field {temperature} (allowed: {title}, {seq}, ",
    ),
    (
        "overlay-bad-format-spec",
        '[overlay]\ntext = "{lux:d}"\n' + LOCAL,
        "overlay.text: {lux:d}: Unknown format code 'd'",
    ),
    (
        "overlay-position",
        '[overlay]\nposition = "middle"\n' + LOCAL,
        'overlay.position: must be one of "top-left", "top-right", "bottom-left", '
        '"bottom-right", "top", "bottom", got "middle"',
    ),
    (
        "overlay-timezone",
        '[overlay]\ntimezone = "Mars/Olympus"\n' + LOCAL,
        'overlay.timezone: must be "local", "UTC" or a time zone name',
    ),
    (
        "overlay-colour",
        '[overlay]\ncolour = "glow"\n' + LOCAL,
        'overlay.colour: must be a colour name or "#rrggbb", got "glow"',
    ),
    (
        "variant-overlay",
        '[[variants]]\nname = "a.jpeg"\noverlay = "no"\n' + LOCAL,
        'variants[0].overlay: must be true or false, got "no"',
    ),
]


@pytest.mark.parametrize(
    ("body", "expected"), [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS]
)
def test_bad_config_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, expected: str
) -> None:
    path = write_config(tmp_path, body)
    code = cli.main(["once", "-c", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1, err
    assert err.startswith("livecam: config error: ")
    assert expected in err, err
    assert "Traceback" not in err


def test_table_is_large_enough() -> None:
    assert len(BAD_CONFIGS) >= 20


def test_missing_file_as_a_user_sees_it(tmp_path: Path) -> None:
    result = run_cli("run", "-c", str(tmp_path / "nope.toml"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"livecam: config error: {tmp_path / 'nope.toml'}: no such file "
        "(copy config.example.toml there, or pass -c PATH)"
    ]
    assert result.stdout == ""


def test_bad_value_as_a_user_sees_it(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[camera]\ninterval = "fast"\n' + LOCAL)
    result = run_cli("once", "-c", str(path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        'livecam: config error: camera.interval: must be a number >= 0 and <= 86400, got "fast"'
    ]


def test_directory_and_binary_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["once", "-c", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    assert cli.main(["once", "-c", str(binary)]) == 2
    assert "not UTF-8" in capsys.readouterr().err


def test_usage_error_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["demo", "--port", "http"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--port: must be a port number from 0 to 65535, got 'http'" in err


def test_example_config_is_valid_and_documents_every_key() -> None:
    root = Path(__file__).resolve().parent.parent
    cfg = config.load(root / "config.example.toml")
    assert cfg.camera.source == "picamera2"
    assert [v.name for v in cfg.variants] == ["live.jpeg", "live800x600.jpeg", "live320x240.jpeg"]
    text = (root / "config.example.toml").read_text()
    sections = {
        "camera": config.CameraConfig,
        "publish": config.PublishConfig,
        "site": config.SiteConfig,
        "target": config.TargetConfig,
        "variants": config.VariantConfig,
        "overlay": config.OverlayConfig,
    }

    for section, cls in sections.items():
        for f in dataclasses.fields(cls):
            documented = f"{f.name} =" in text or f"[camera.{f.name}]" in text
            assert documented, (section, f.name)


def test_defaults_when_sections_are_missing(tmp_path: Path) -> None:
    cfg = config.load(write_config(tmp_path, LOCAL))
    assert cfg.camera == config.CameraConfig()
    assert [(v.name, v.width, v.height, v.quality) for v in cfg.variants] == [
        ("live.jpeg", None, None, 85),
        ("live800x600.jpeg", 800, 600, 85),
        ("live320x240.jpeg", 320, 240, 85),
    ]


def test_variant_quality_defaults_to_camera_quality(tmp_path: Path) -> None:
    cfg = config.load(
        write_config(tmp_path, '[camera]\nquality = 70\n[[variants]]\nname = "a.jpg"\n' + LOCAL)
    )
    assert cfg.variants[0].quality == 70


def test_prefix_gets_a_trailing_slash() -> None:
    cfg = config.parse({"target": {"kind": "s3", "bucket": "cam", "prefix": "cam1"}})
    assert cfg.target.prefix == "cam1/"


@pytest.mark.parametrize(
    ("box", "frame", "expected"),
    [
        ((800, 600), (2028, 1520), (800, 600)),
        ((800, 600), (1920, 1080), (800, 450)),
        ((320, 240), (4056, 3040), (320, 240)),
        ((1920, 1080), (4056, 3040), (1441, 1080)),
        ((800, None), (1000, 500), (800, 400)),
        ((None, 100), (1000, 500), (200, 100)),
        ((4000, 3000), (1280, 720), (1280, 720)),  # never upscaled
        ((None, None), (1280, 720), (1280, 720)),
    ],
)
def test_bounding_box(
    box: tuple[int | None, int | None], frame: tuple[int, int], expected: tuple[int, int]
) -> None:
    v = config.VariantConfig("v.jpeg", box[0], box[1])
    assert v.size_for(*frame) == expected


def test_world_readable_secret_warns(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        '[target]\nkind = "s3"\nbucket = "cam"\naccess_key_id = "AKIAEXAMPLE"\n'
        'secret_access_key = "s3cr3t-value"\n',
    )
    path.chmod(0o644)
    warning = config.insecure_secrets(config.load(path))
    assert warning is not None
    assert "chmod 600" in warning
    assert "s3cr3t-value" not in warning
    path.chmod(0o600)
    assert config.insecure_secrets(config.load(path)) is None


def test_config_error_has_no_traceback_in_python() -> None:
    with pytest.raises(ConfigError) as e:
        config.parse({"camera": {"interval": "fast"}, "target": {"path": "/x"}})
    assert e.value.__cause__ is None and e.value.__suppress_context__


# --- input the parser cannot take, and files that are not files (#13 item 7) ---------------

UNREADABLE = [
    # (id, file body, the message after "PATH: ")
    (
        "nested-too-deeply",
        "a = " + "[" * 1000 + "]" * 1000,
        "invalid TOML: arrays or tables nested",
    ),
    ("integer-digits", "a = 1" + "0" * 5000, "invalid TOML: a number with too many digits"),
    (
        "hex-integer-shown",
        "[camera]\nwidth = 0x" + "f" * 5000 + "\n" + LOCAL,
        "camera.width: must be an integer from 16 to 9152, got a value too large to show",
    ),
    ("over-1-mib", "#" * (1 << 20) + "\n" + LOCAL, "larger than 1 MiB, not a livecam config"),
]


def check_config(path: str | Path) -> subprocess.CompletedProcess[str]:
    """`publisher.py check -c PATH` as a user runs it, bounded in time and memory so that a
    regression fails instead of hanging or eating the machine's memory."""

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_DATA, (1 << 30, 1 << 30))

    return subprocess.run(
        [sys.executable, str(PUBLISHER), "check", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        preexec_fn=limit_memory,
        check=False,
    )


def config_failure(result: subprocess.CompletedProcess[str], path: object) -> str:
    """The one line `check` prints for a config error, after "PATH: "; exit 2."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    [line] = result.stdout.splitlines()
    assert line.startswith(f"FAIL config {path}: "), line
    return line.removeprefix(f"FAIL config {path}: ")


@pytest.mark.parametrize(
    ("body", "expected"), [u[1:] for u in UNREADABLE], ids=[u[0] for u in UNREADABLE]
)
def test_toml_the_parser_cannot_take_is_one_line(tmp_path: Path, body: str, expected: str) -> None:
    path = write_config(tmp_path, body)
    message = config_failure(check_config(path), path)
    assert message.removeprefix(f"{path}: ").startswith(expected), message


def test_a_fifo_is_refused_not_waited_for(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    os.mkfifo(path)
    message = config_failure(check_config(path), path)
    assert message == f"{path}: not a regular file, expected a TOML file"


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null", "/dev/urandom"])
def test_a_device_is_refused_not_read(device: str) -> None:
    message = config_failure(check_config(device), device)
    assert message == f"{device}: not a regular file, expected a TOML file"


def test_a_config_of_1_mib_is_still_read(tmp_path: Path) -> None:
    body = LOCAL + "#" * ((1 << 20) - len(LOCAL))
    assert len(body.encode()) == 1 << 20
    assert config.load(write_config(tmp_path, body)).target.kind == "local"


# --- bounds a real camera never needs to pass (#13 item 8) ----------------------------------


def test_the_largest_pi_sensor_fits() -> None:
    for w, h in ((9152, 6944), (6944, 9152), (4056, 3040), (16, 16)):
        cfg = config.parse({"camera": {"width": w, "height": h}, "target": {"path": "/x"}})
        assert (cfg.camera.width, cfg.camera.height) == (w, h)


@pytest.mark.parametrize("seconds", [0, 10, 600, 86400])
def test_status_interval_off_or_at_least_10_s(seconds: float) -> None:
    cfg = config.parse({"publish": {"status_interval": seconds}, "target": {"path": "/x"}})
    assert cfg.publish.status_interval == seconds


# --- a local path under ~ (#13 item 10) -----------------------------------------------------


def test_a_path_under_home_is_expanded(tmp_path: Path) -> None:
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    path = write_config(
        tmp_path,
        '[camera]\nsource = "test"\nwidth = 64\nheight = 48\n'
        '[target]\nkind = "local"\npath = "~/live"\n',
    )
    result = subprocess.run(
        [sys.executable, str(PUBLISHER), "once", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={**os.environ, "HOME": str(home)},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (home / "live" / "live.json").is_file()
    assert list(cwd.iterdir()) == []  # no literal ./~ directory
