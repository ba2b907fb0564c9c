"""Every template has one typed input whose fields are exactly the template's variables."""

import contextlib
import importlib

import jinja2
import pytest
from jinja2 import meta

from novelcraft.prompts import all_prompt_inputs, environment, template_names

# Packages that define PromptInput subclasses for their own templates.
for module in (
    "novelcraft.prompts",
    "novelcraft.judges.judge",
    "novelcraft.judges.answer",
    "novelcraft.drafting.continuation",
    "novelcraft.dataprep.prompts",
    "novelcraft.dataprep.synth.prompts",
    "train.prompts",
):
    with contextlib.suppress(ModuleNotFoundError):
        importlib.import_module(module)


def _variables(name: str) -> set[str]:
    env = environment()
    source = env.loader.get_source(env, name)[0]
    return meta.find_undeclared_variables(env.parse(source))


def test_every_template_has_an_input_model():
    inputs = all_prompt_inputs()
    assert set(template_names()) == set(inputs), "templates and PromptInput subclasses differ"


@pytest.mark.parametrize("name", template_names())
def test_template_variables_match_input_fields(name):
    model = all_prompt_inputs()[name]
    assert _variables(name) == set(model.model_fields), name


def test_missing_variable_is_an_error():
    template = environment().get_template("system.j2")
    with pytest.raises(jinja2.UndefinedError):
        template.render(title="T")


def test_scene_prompt_puts_stable_parts_first():
    from novelcraft.core.schema import RunningSummary, Seed
    from novelcraft.prompts import ScenePrompt, summary_lines, system_message

    seed = Seed(premise="p", title="T", style="terse")
    system = system_message(seed, "WORLD-TEXT")
    user = ScenePrompt(
        summary=summary_lines(RunningSummary(global_events="a storm")),
        progress=42,
        chapter_title="C",
        goal="GOAL-TEXT",
        characters=[],
        setting="",
        target_words=500,
        opening=False,
    ).render()
    assert "WORLD-TEXT" in system.content and "terse" in system.content
    assert user.index("a storm") < user.index("NOVEL PROGRESS: 42%") < user.index("GOAL-TEXT")
