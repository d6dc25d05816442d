"""livecam: publish a Raspberry Pi camera's live image to static hosting."""

__version__ = "0.1.0"
