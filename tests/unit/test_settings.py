"""Settings: defaults < config file < HELPFASTER_* environment < CLI overrides."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from helpfaster_box.settings import (
    FIELDS,
    Settings,
    SettingsError,
    load_settings,
    render_config_file,
)

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "config" / "helpfaster.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "helpfaster.toml"
    path.write_text(text)
    return path


def test_defaults():
    s = load_settings(environ={})
    assert (s.port, s.host, s.rate_limit_free, s.rate_limit_scale) == (8080, "127.0.0.1", 20, 300)
    assert s.data_dir  # a documented default, never empty
    assert s.rate_limit_for("starter") == 60 and s.rate_limit_for("growth") == 120


def test_precedence_defaults_file_env_cli(tmp_path):
    cfg = write(tmp_path, 'port = 9001\nhost = "0.0.0.0"\nrate_limit_free = 5\nlog_level = "warning"\n')
    env = {"HELPFASTER_PORT": "9002", "HELPFASTER_RATE_LIMIT_FREE": "7"}

    file_only = load_settings(cfg, environ={})
    assert (file_only.port, file_only.host, file_only.rate_limit_free) == (9001, "0.0.0.0", 5)

    file_env = load_settings(cfg, environ=env)
    assert (file_env.port, file_env.host, file_env.rate_limit_free) == (9002, "0.0.0.0", 7)

    all_layers = load_settings(cfg, {"port": 9003, "host": None}, environ=env)
    assert all_layers.port == 9003  # CLI wins
    assert all_layers.host == "0.0.0.0"  # a CLI flag left unset does not clobber the file
    assert all_layers.rate_limit_free == 7  # env still beats the file
    assert all_layers.log_level == "warning"  # file beats the default
    assert all_layers.rate_limit_scale == 300  # untouched default


def test_config_file_from_environment(tmp_path):
    cfg = write(tmp_path, "port = 9100\n")
    assert load_settings(environ={"HELPFASTER_CONFIG": str(cfg)}).port == 9100
    # an explicit config file beats HELPFASTER_CONFIG
    other = tmp_path / "other.toml"
    other.write_text("port = 9200\n")
    assert load_settings(other, environ={"HELPFASTER_CONFIG": str(cfg)}).port == 9200


def test_env_values_are_typed():
    s = load_settings(
        environ={
            "HELPFASTER_LOAD_MODELS": "false",
            "HELPFASTER_LLM_TIMEOUT_S": "2.5",
            "HELPFASTER_URL_ALLOWED_HOSTS": "docs.example.com, *.intranet ,",
            "HELPFASTER_UNRELATED": "ignored",
        }
    )
    assert s.load_models is False
    assert s.llm_timeout_s == 2.5
    assert s.url_allowed_hosts == ["docs.example.com", "*.intranet"]


def test_unknown_key_in_file_is_an_error_naming_it(tmp_path):
    cfg = write(tmp_path, "port = 9001\nrate_limt_free = 5\n")
    with pytest.raises(SettingsError, match="rate_limt_free"):
        load_settings(cfg, environ={})


@pytest.mark.parametrize(
    "source, text",
    [
        ("file", "port = 0\n"),
        ("file", 'port = "eighty"\n'),
        ("file", "max_request_bytes = 10\n"),
        ("file", 'log_level = "loud"\n'),
        ("file", "port = [\n"),  # not TOML
        ("env", "HELPFASTER_PORT=70000"),
        ("env", "HELPFASTER_LOAD_MODELS=perhaps"),
        ("env", "HELPFASTER_TEMPERATURE_OF_ROOM=1"),  # unknown env names are ignored, not errors
    ],
)
def test_bad_values_are_errors_naming_the_setting(tmp_path, source, text):
    if source == "file":
        with pytest.raises(SettingsError) as err:
            load_settings(write(tmp_path, text), environ={})
        name = text.split("=")[0].strip()
        assert name in str(err.value) or "TOML" in str(err.value)
    else:
        name, value = text.split("=", 1)
        if "ROOM" in name:
            assert load_settings(environ={name: value}).port == 8080
            return
        with pytest.raises(SettingsError) as err:
            load_settings(environ={name: value})
        assert name.removeprefix("HELPFASTER_").lower() in str(err.value)


def test_missing_config_file_is_an_error(tmp_path):
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_shipped_config_file_is_generated_and_cannot_drift():
    assert SHIPPED.read_text() == render_config_file()


def test_shipped_config_file_lists_every_key_commented_with_its_default():
    text = SHIPPED.read_text()
    assert tomllib.loads(text) == {}  # everything is commented out: an empty config
    commented = dict(re.findall(r"^# ([a-z_]+) = (.+)$", text, flags=re.MULTILINE))
    assert set(commented) == set(FIELDS)
    defaults = Settings()
    for name, raw in commented.items():
        assert f"\n# {name} = " in text
        value = tomllib.loads(f"v = {raw}")["v"]  # each line, uncommented, is valid TOML
        if name not in ("data_dir", "models_dir"):  # machine-specific, shown symbolically
            assert value == getattr(defaults, name), name
    # each key has a help line above it
    for name in FIELDS:
        block = text.split(f"\n# {name} = ")[0].rsplit("\n", 1)[-1]
        assert block.startswith("# ") and len(block) > 5, name


def test_uncommented_shipped_file_loads_to_the_defaults(tmp_path):
    text = "\n".join(
        line[2:] if re.match(r"^# [a-z_]+ = ", line) else line for line in SHIPPED.read_text().splitlines()
    )
    text = re.sub(r"^(data_dir|models_dir) = .*$", "", text, flags=re.MULTILINE)
    s = load_settings(write(tmp_path, text), environ={})
    assert s == load_settings(environ={})
