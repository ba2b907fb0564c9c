import json

import pytest
from novelcraft.settings.config import ConfigError, resolve_settings, save_config


def test_layers_in_order(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[novelcraft]\nbackend = "fake"\ntemperature = 0.5\nmax_attempts = 2\n')
    env = {"NOVELCRAFT_TEMPERATURE": "0.6", "NOVELCRAFT_MAX_ATTEMPTS": "3"}
    s = resolve_settings(cfg, env=env, flags={"max_attempts": 5, "model": None})
    assert s.backend == "fake"  # file over default
    assert s.temperature == 0.6  # env over file
    assert s.max_attempts == 5  # flag over env; a None flag does not count
    assert resolve_settings(None, env={}).backend == "llamacpp"


def test_config_file_from_env_and_yaml(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("backend: fake\nadapters: {noir: /a/noir}\n")
    s = resolve_settings(None, env={"NOVELCRAFT_CONFIG": str(cfg)})
    assert s.backend == "fake" and s.adapters == {"noir": "/a/noir"}


def test_adapters_from_env_text():
    s = resolve_settings(None, env={"NOVELCRAFT_ADAPTERS": "a=/x, b=/y"})
    assert s.adapters == {"a": "/x", "b": "/y"}


@pytest.mark.parametrize(
    ("content", "needle"),
    [("bogus = 1\n", "bogus"), ('temperature = "hot"\n', "temperature"), ("max_attempts = [\n", "not valid")],
)
def test_bad_config_names_file_and_field(tmp_path, content, needle):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(content)
    with pytest.raises(ConfigError) as info:
        resolve_settings(cfg, env={})
    assert "bad.toml" in str(info.value) and needle in str(info.value)


def test_bad_env_value_names_source():
    with pytest.raises(ConfigError, match="environment.*top_p"):
        resolve_settings(None, env={"NOVELCRAFT_TOP_P": "7"})


def test_saved_config_round_trips(tmp_path):
    s = resolve_settings(None, env={}, flags={"backend": "fake"})
    path = save_config(s, tmp_path / "out.config.json", {"story_id": "x"})
    data = json.loads(path.read_text())
    assert data["settings"]["backend"] == "fake" and data["story_id"] == "x"
    assert resolve_settings(None, env={}, base=data["settings"]) == s
