"""The exceptions livecam raises; the CLI turns them into messages and exit codes."""


class LivecamError(Exception):
    """Base class of every error livecam reports to the user."""


class ConfigError(LivecamError):
    """The configuration is invalid; the message names the key and what is allowed."""


class CameraError(LivecamError):
    """The camera could not be opened or did not deliver a usable frame."""


class CameraFatalError(CameraError):
    """The camera failed too often in a row; the process should exit for systemd."""


class RenderError(LivecamError):
    """A frame could not be turned into JPEG variants."""


class PublishError(LivecamError):
    """The target did not accept an object; what was published before is intact."""


class TimelapseError(LivecamError):
    """A day's timelapse could not be made (no frames, none readable)."""
