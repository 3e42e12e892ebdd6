"""Every setting, read from the environment in one place and parsed strictly."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

SMS_BACKENDS = ("console", "twilio", "fake")


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the service refuses to start."""


def _int(name: str, raw: str, minimum: int = 0) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def _float(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must be >= 0, got {value}")
    return value


def _bool(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name} must be a boolean (true/false), got {raw!r}")


@dataclass
class Settings:
    """The parsed configuration; field names are the environment variable names."""

    STEADFAST_ENV: str = "development"
    DATABASE_URL: str = ""
    SECRET_KEY: str = ""
    PUBLIC_BASE_URL: str = "http://127.0.0.1:5000"
    SMS_BACKEND: str = "console"
    TWILIO_ACCOUNT_SID: str = ""
    TWILIO_AUTH_TOKEN: str = ""
    TWILIO_FROM_NUMBER: str = ""
    TWILIO_MESSAGING_SERVICE_SID: str = ""
    TWILIO_API_BASE_URL: str = ""
    SMS_MPS: float = 10.0
    SMS_DAILY_CAP: int = 6
    STALE_PROMPT_MINUTES: int = 30
    PLAN_HORIZON_HOURS: int = 36
    ALERT_BATCH_MINUTES: int = 15
    CRISIS_ACK_MINUTES: int = 15
    DEFAULT_PHONE_REGION: str = "US"
    MESSAGE_BODY_RETENTION_DAYS: int = 90
    MEETING_FEED_REFRESH_HOURS: int = 24
    ALLOW_PRIVATE_FEED_URLS: bool = False
    LOG_LEVEL: str = "INFO"
    # Multiplies every scheduler interval (service.jobs.scheduler.INTERVALS); below 1 only for
    # tests and demos that need sweeps every few seconds.
    SCHEDULER_INTERVAL_SCALE: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def production(self) -> bool:
        return self.STEADFAST_ENV == "production"


_PARSERS = {
    "SMS_MPS": lambda n, v: _float(n, v),
    "SMS_DAILY_CAP": lambda n, v: _int(n, v, 1),
    "STALE_PROMPT_MINUTES": lambda n, v: _int(n, v, 1),
    "PLAN_HORIZON_HOURS": lambda n, v: _int(n, v, 1),
    "ALERT_BATCH_MINUTES": lambda n, v: _int(n, v, 0),
    "CRISIS_ACK_MINUTES": lambda n, v: _int(n, v, 1),
    "MESSAGE_BODY_RETENTION_DAYS": lambda n, v: _int(n, v, 1),
    "MEETING_FEED_REFRESH_HOURS": lambda n, v: _int(n, v, 1),
    "ALLOW_PRIVATE_FEED_URLS": _bool,
    "SCHEDULER_INTERVAL_SCALE": lambda n, v: _float(n, v),
}


def load_settings(
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    instance_path: str | Path = "instance",
) -> Settings:
    """Build Settings from the environment plus explicit overrides, validating every value."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(Settings):
        if f.name == "extra" or f.name not in environ:
            continue
        raw = environ[f.name]
        parser = _PARSERS.get(f.name)
        values[f.name] = parser(f.name, raw) if parser else raw.strip()
    settings = Settings(**values)
    for key, value in (overrides or {}).items():
        if hasattr(settings, key) and key != "extra":
            setattr(settings, key, value)
        else:
            settings.extra[key] = value
    _validate(settings, Path(instance_path))
    return settings


def _validate(s: Settings, instance_path: Path) -> None:
    if s.STEADFAST_ENV not in ("development", "production", "test"):
        raise ConfigError("STEADFAST_ENV must be development, production or test")
    if s.SMS_BACKEND not in SMS_BACKENDS:
        raise ConfigError(f"SMS_BACKEND must be one of {', '.join(SMS_BACKENDS)}")
    if s.production:
        missing = [n for n in ("SECRET_KEY", "PUBLIC_BASE_URL") if not getattr(s, n)]
        if missing:
            raise ConfigError(f"production needs {', '.join(missing)}")
        if s.SMS_BACKEND == "fake":
            raise ConfigError("SMS_BACKEND=fake is for tests only")
    if s.SMS_BACKEND == "twilio":
        missing = [n for n in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN") if not getattr(s, n)]
        if not (s.TWILIO_FROM_NUMBER or s.TWILIO_MESSAGING_SERVICE_SID):
            missing.append("TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID")
        if missing:
            raise ConfigError(f"SMS_BACKEND=twilio needs {', '.join(missing)}")
    if not s.SCHEDULER_INTERVAL_SCALE > 0:
        raise ConfigError("SCHEDULER_INTERVAL_SCALE must be greater than 0")
    if not s.PUBLIC_BASE_URL.startswith(("http://", "https://")):
        raise ConfigError("PUBLIC_BASE_URL must start with http:// or https://")
    s.PUBLIC_BASE_URL = s.PUBLIC_BASE_URL.rstrip("/")
    if len(s.DEFAULT_PHONE_REGION) != 2 or not s.DEFAULT_PHONE_REGION.isalpha():
        raise ConfigError("DEFAULT_PHONE_REGION must be a two-letter region code such as US")
    s.DEFAULT_PHONE_REGION = s.DEFAULT_PHONE_REGION.upper()
    if not s.DATABASE_URL:
        instance_path.mkdir(parents=True, exist_ok=True)
        s.DATABASE_URL = f"sqlite:///{(instance_path / 'steadfast.db').resolve()}"
    if not s.SECRET_KEY:
        s.SECRET_KEY = _development_secret(instance_path)
    if len(s.SECRET_KEY) < 16:
        raise ConfigError("SECRET_KEY must be at least 16 characters")


def _development_secret(instance_path: Path) -> str:
    """Generate (once) and reuse a development SECRET_KEY kept under instance/."""
    instance_path.mkdir(parents=True, exist_ok=True)
    path = instance_path / "secret_key"
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key
