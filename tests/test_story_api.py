"""The Python API alone (no CLI) gets every rule the CLI has; backends register themselves."""

import json
import sqlite3
from pathlib import Path

import pytest

from novelcraft.backends import Backend, BackendError, Completion, registry
from novelcraft.backends.fake import FakeBackend
from novelcraft.core.errors import InputError
from novelcraft.core.schema import Seed
from novelcraft.core.seedfile import SeedError, parse_seed
from novelcraft.runtime.store import Store, StoreError
from novelcraft.settings.backend import create_backend
from novelcraft.settings.config import ConfigError, resolve_settings
from novelcraft.story.novel import DraftFailed, Story

REPO = Path(__file__).resolve().parent.parent


def settings(db_path, **flags):
    return resolve_settings(None, env={}, flags={"backend": "fake", "db": db_path, **flags})


def test_a_too_long_world_is_refused_before_any_database_exists(db_path):
    seed = Seed(premise="A tale.", world="the harbour lamp burns all night " * 80)
    with pytest.raises(InputError, match=r"long.yaml: field 'world': \d+ tokens, over the 400-token budget"):
        Story.start(seed, settings(db_path), source="long.yaml")
    assert not db_path.exists()


def test_a_resumed_story_keeps_its_settings_and_overrides_win(db_path):
    seed = Seed(premise="A ferry.", scenes=3, target_words=600, scene_words=200, seed=2)
    story = Story.start(seed, settings(db_path, temperature=0.42, max_continuations=2))
    story.close()
    reopened = Story.open(story.id, db_path)
    kept = reopened.settings(env={})
    assert (kept.backend, kept.temperature, kept.max_continuations) == ("fake", 0.42, 2)
    assert reopened.settings(env={}, flags={"temperature": 0.9}).temperature == 0.9
    result = reopened.resume()
    assert result["status"] == "done" and result["scenes_done"] == 3
    scene_calls = [c for c in reopened.store.calls(story.id) if c["template"] == "scene.j2"]
    assert {json.loads(c["sampling_json"])["temperature"] for c in scene_calls} == {0.42}


def test_a_backend_failure_marks_the_story_failed_and_resume_finishes_it(db_path):
    seed = Seed(premise="A lamp.", scenes=3, target_words=600, scene_words=200, seed=4)
    story = Story.start(seed, settings(db_path, max_attempts=1), backend=FakeBackend())
    with pytest.raises(DraftFailed, match=f"story {story.id}"):
        story.draft(backend=FakeBackend(fault_rate=1.0))
    assert story.status == "failed"
    assert story.draft(backend=FakeBackend())["status"] == "done"


def test_only_start_creates_a_database(db_path):
    with pytest.raises(StoreError, match="no story database"):
        Story.open("abc", db_path)
    assert not db_path.exists()


def test_a_foreign_or_corrupt_database_is_refused_and_left_untouched(tmp_path):
    foreign = tmp_path / "other.db"
    con = sqlite3.connect(foreign)
    con.execute("create table invoices (id integer)")
    con.commit()
    con.close()
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    for path in (foreign, junk):
        before = path.read_bytes()
        with pytest.raises(StoreError, match="not a novelcraft database"):
            Store(path)
        assert path.read_bytes() == before
        assert not Path(str(path) + "-wal").exists()


def test_every_seed_error_is_listed():
    with pytest.raises(SeedError) as info:
        parse_seed("premse: typo\npov: fourth\ntarget_words: lots\n")
    lines = info.value.lines
    assert "field 'premise': required" in lines
    assert "field 'premse': unknown key" in lines
    assert any(line.startswith("field 'pov'") for line in lines)
    assert any(line.startswith("field 'target_words'") for line in lines)


def test_every_config_error_is_listed_with_its_source(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[novelcraft]\ntemperature = "hot"\ntop_p = 7\n[novelcraft.fake]\nlatency = 3\n')
    with pytest.raises(ConfigError) as info:
        resolve_settings(cfg, env={})
    text = "\n".join(info.value.lines)
    assert len(info.value.lines) == 3, text
    assert all(line.startswith(str(cfg)) for line in info.value.lines)
    assert "'temperature'" in text and "'top_p'" in text and "'fake.latency': unknown key" in text


def test_a_moved_setting_says_where_it_lives_now(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[novelcraft]\nbase_url = "http://h:8000/v1"\n')
    with pytest.raises(
        ConfigError, match=r"'base_url' \(it is now the openai backend's option 'openai.base_url'\)"
    ):
        resolve_settings(cfg, env={})


def test_backend_options_from_file_env_and_flags(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[novelcraft]\nbackend = "openai"\n[novelcraft.openai]\nbase_url = "http://a/v1"\ntimeout_s = 5\n'
    )
    s = resolve_settings(cfg, env={"NOVELCRAFT_OPENAI_TIMEOUT_S": "7"}, backend_flags={"server_kind": "vllm"})
    options = s.options()
    assert (options.base_url, options.timeout_s, options.server_kind) == ("http://a/v1", 7.0, "vllm")
    with pytest.raises(ConfigError, match="'openai.server_kind'"):
        resolve_settings(cfg, env={}, backend_flags={"server_kind": "nosuch"})


def test_stories_saved_with_flat_backend_settings_resume_unchanged(db_path):
    """A database written before backends had their own options is upgraded when opened."""
    seed = Seed(premise="Old.", scenes=2, target_words=400, scene_words=200, seed=1)
    story = Story.start(seed, settings(db_path))
    legacy = {**story.saved_settings(), "fake_latency_ms": 1.0, "base_url": "http://old:8000/v1"}
    legacy.pop("backend_options")
    story.store.db["stories"].update(story.id, {"settings_json": json.dumps(legacy)})
    story.store.db["_migrations"].delete(2)
    story.close()
    reopened = Story.open(story.id, db_path)
    s = reopened.settings(env={})
    assert s.options().latency_ms == 1.0 and s.options("openai").base_url == "http://old:8000/v1"
    assert reopened.resume()["status"] == "done"


def test_the_fake_backend_is_one_file_found_by_the_registry():
    spec = registry.spec("fake")
    assert spec.cls is FakeBackend and spec.cls.__module__ == "novelcraft.backends.fake"
    assert set(registry.names()) >= {"fake", "llamacpp", "openai", "transformers", "vllm"}
    # Nothing else in the engine names it: adding a backend touches no other file.
    mentions = [
        p.relative_to(REPO)
        for p in (REPO / "engine").rglob("*.py")
        if p.name != "fake.py" and ("FakeBackend" in p.read_text() or "backends.fake" in p.read_text())
    ]
    assert mentions == []


def test_every_backend_names_an_unknown_adapter_alike():
    class Styled(FakeBackend):
        adapters = {"noir": "/a/noir", "gothic": "/a/gothic"}

    Styled().require_adapters(None, "noir", "gothic")
    with pytest.raises(
        BackendError, match=r"^adapter 'x' is not configured \(known: \['gothic', 'noir'\]\)$"
    ):
        Styled().require_adapters("noir", "x")


def test_a_new_backend_is_one_class(db_path):
    @registry.register
    class EchoBackend(Backend):
        name = "echo-test"
        summary = "answers with its prompt"

        @classmethod
        def from_options(cls, common, options):
            return cls()

        def complete(self, messages, sampling, *, json_schema=None, adapter=None):
            return Completion(text=messages[-1].content)

    try:
        s = resolve_settings(None, env={}, flags={"backend": "echo-test", "db": db_path})
        assert isinstance(create_backend(s), EchoBackend)
    finally:
        registry._REGISTRY.pop("echo-test")
