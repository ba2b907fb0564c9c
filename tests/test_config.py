import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from novelcraft.backends.registry import BackendCommon
from novelcraft.cli.main import app, main
from novelcraft.cli.shell import invocation_layers
from novelcraft.core.schema import CallPolicy
from novelcraft.settings.backend import backend_common
from novelcraft.settings.config import ConfigError, Settings, resolve_settings, save_config

SHORT_SEED = Path(__file__).resolve().parent.parent / "stories" / "short.yaml"


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


def test_a_backend_and_a_client_get_only_the_settings_they_read():
    flags = {"backend": "fake", "model": "m", "adapters": "noir=/a", "n_ctx": 2048, "max_attempts": 2}
    s = resolve_settings(None, env={}, flags={**flags, "backoff_s": 0.1, "max_calls": 9, "temperature": 0.2})
    assert backend_common(s) == BackendCommon(
        model="m", adapters={"noir": "/a"}, n_ctx=2048, max_attempts=2, backoff_s=0.1
    )
    assert s.call_policy() == CallPolicy(max_attempts=2, backoff_s=0.1, max_calls=9, n_ctx=2048)
    # Both are taken by name: every field of theirs is a setting.
    assert set(BackendCommon.model_fields) | set(CallPolicy.model_fields) <= set(Settings.model_fields)


def test_base_url_is_short_for_the_chosen_backends_option(tmp_path):
    ctx = SimpleNamespace(obj=None)
    ctx.find_root = lambda: ctx
    given = {"db": None, "backend": None, "model": None, "adapter": None, "expert": None, "config": None}
    main(ctx, **given, base_url="http://a/v1", option=["timeout_s=5", "base_url=http://b/v1"])
    assert invocation_layers(ctx)["backend_flags"] == {"base_url": "http://b/v1", "timeout_s": "5"}
    # A backend without the option refuses it, as it refuses -o base_url=...
    args = ["--db", str(tmp_path / "x.db"), "--backend", "fake", "--base-url", "http://a/v1"]
    result = CliRunner().invoke(app, [*args, "write", str(SHORT_SEED)], env={"NOVELCRAFT_CONFIG": ""})
    assert result.exit_code == 2 and "fake.base_url" in result.output
