"""Configuration is parsed strictly, and production refuses to start without its secrets."""

from __future__ import annotations

import pytest

from service.config import ConfigError, load_settings


def test_defaults_need_no_configuration(tmp_path):
    s = load_settings({}, instance_path=tmp_path)
    assert s.SMS_BACKEND == "console"
    assert f"sqlite:///{(tmp_path / 'steadfast.db').resolve()}" == s.DATABASE_URL
    assert (tmp_path / "secret_key").exists()
    assert (tmp_path / "secret_key").read_text() == s.SECRET_KEY
    assert (s.SMS_MPS, s.SMS_DAILY_CAP, s.STALE_PROMPT_MINUTES, s.PLAN_HORIZON_HOURS) == (
        10.0,
        6,
        30,
        36,
    )
    # The development key is generated once and reused.
    assert load_settings({}, instance_path=tmp_path).SECRET_KEY == s.SECRET_KEY


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"STEADFAST_ENV": "production"}, "SECRET_KEY"),
        (
            {"STEADFAST_ENV": "production", "SECRET_KEY": "k" * 32, "PUBLIC_BASE_URL": ""},
            "PUBLIC_BASE_URL",
        ),
        ({"SMS_BACKEND": "twilio"}, "TWILIO_ACCOUNT_SID"),
        (
            {"SMS_BACKEND": "twilio", "TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t"},
            "TWILIO_FROM_NUMBER",
        ),
        ({"SMS_BACKEND": "carrier-pigeon"}, "SMS_BACKEND"),
        ({"SMS_MPS": "fast"}, "SMS_MPS"),
        ({"SMS_DAILY_CAP": "0"}, "SMS_DAILY_CAP"),
        ({"ALLOW_PRIVATE_FEED_URLS": "maybe"}, "ALLOW_PRIVATE_FEED_URLS"),
        ({"PUBLIC_BASE_URL": "steadfast.example"}, "PUBLIC_BASE_URL"),
        ({"DEFAULT_PHONE_REGION": "USA"}, "DEFAULT_PHONE_REGION"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
    ],
)
def test_bad_settings_are_refused_with_the_setting_named(tmp_path, env, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(env, instance_path=tmp_path)


def test_production_starts_with_its_secrets(tmp_path):
    s = load_settings(
        {
            "STEADFAST_ENV": "production",
            "SECRET_KEY": "k" * 32,
            "PUBLIC_BASE_URL": "https://sf.example/",
        },
        instance_path=tmp_path,
    )
    assert s.production and s.PUBLIC_BASE_URL == "https://sf.example"
    assert not (tmp_path / "secret_key").exists()


def test_create_app_refuses_twilio_without_credentials(tmp_path):
    from service import create_app

    with pytest.raises(ConfigError, match="TWILIO"):
        create_app({"SMS_BACKEND": "twilio", "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
