import json
from pathlib import Path

import pytest

from novelcraft.cli.main import app
from novelcraft.core.schema import Seed
from novelcraft.core.seedfile import SeedError, load_seed, parse_seed

REPO = Path(__file__).resolve().parent.parent

BROKEN = {
    "missing_premise.yaml": (b"title: No premise here\n", "premise"),
    "wrong_type.yaml": (b"premise: A tale.\ntarget_words: many\n", "target_words"),
    "unknown_key.yaml": (b"premise: A tale.\nvillian: typo\n", "villian"),
    "empty.yaml": (b"", "empty"),
    "latin1.yaml": ("premise: Caf\xe9 at dawn\n".encode("latin-1"), "UTF-8"),
    "syntax.yaml": (b"premise: [unclosed\ntitle: x\n", "line"),
    "bad_pov.yaml": (b"premise: A tale.\npov: fourth\n", "pov"),
    "wrong_shape.yaml": (b"- just\n- a list\n", "mapping"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_seed_is_one_line_exit_2_and_creates_no_story(name, tmp_path, runner, db_path):
    data, expected = BROKEN[name]
    seed = tmp_path / name
    seed.write_bytes(data)
    result = runner.invoke(app, ["--db", str(db_path), "--backend", "fake", "write", str(seed)])
    assert result.exit_code == 2, result.output
    message = result.stderr.strip() if result.stderr else result.output.strip()
    assert len(message.splitlines()) == 1, message
    assert name in message and expected in message
    assert not db_path.exists()  # refused before any database is created


def test_example_seeds_are_valid():
    seeds = sorted((REPO / "stories").glob("*.yaml")) + sorted((REPO / "stories").glob("*.md"))
    assert len(seeds) >= 2
    genres = {load_seed(p).genre for p in seeds}
    assert len(genres) >= 2


def test_markdown_body_becomes_premise():
    seed = parse_seed("---\ntitle: T\n---\nA river that runs uphill.\n")
    assert seed.premise == "A river that runs uphill." and seed.title == "T"


def test_unclosed_front_matter():
    with pytest.raises(SeedError, match="never closed"):
        parse_seed("---\ntitle: T\npremise: x\n")


def test_scene_count_defaults_from_target_and_scene_words():
    assert Seed(premise="x").scene_count == 35  # 27,500 / 800 rounded up
    assert Seed(premise="x", target_words=5000).scene_count == 20  # never below 20 by default
    assert Seed(premise="x", target_words=90_000).scene_count == 50  # never above 50 by default
    explicit = Seed(premise="x", scenes=3, target_words=3000, scene_words=500)
    assert explicit.scene_count == 3 and explicit.words_per_scene == 1000


def test_missing_file_is_a_clean_error(runner, db_path, tmp_path):
    result = runner.invoke(app, ["--db", str(db_path), "write", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "nope.yaml" in result.output + (result.stderr or "")


def test_json_output_of_valid_seed(runner, db_path, short_seed):
    result = runner.invoke(
        app, ["--db", str(db_path), "--backend", "fake", "write", str(short_seed), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["scenes"] == 4 and report["words"] > 0 and report["story_id"]


def test_world_over_400_tokens_is_a_seed_error(tmp_path, runner, db_path):
    seed = tmp_path / "long_world.yaml"
    seed.write_text("premise: A tale.\nworld: " + "the harbour lamp burns all night " * 80 + "\n")
    result = runner.invoke(app, ["--db", str(db_path), "--backend", "fake", "write", str(seed)])
    assert result.exit_code == 2
    assert "long_world.yaml" in result.output and "world" in result.output
    assert not db_path.exists()  # refused before any database is created


def test_unknown_backend_fails_before_any_story(tmp_path, runner, db_path, short_seed):
    result = runner.invoke(app, ["--db", str(db_path), "--backend", "nosuch", "write", str(short_seed)])
    assert result.exit_code == 2 and "nosuch" in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not db_path.exists()  # refused before any database is created
