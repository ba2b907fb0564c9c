from novelcraft.evaluation.table import METRICS
from novelcraft.metrics.narration import is_meta_narration, narration_report
from novelcraft.metrics.suite import flatten, text_metrics


def test_sentences_about_the_scene_or_story_are_counted_and_prose_is_not():
    text = (
        "The scene has ended because Isla left the room. She walked to the cliff.\n\n"
        "In the next scene, she would have to face Tobias. The wind rose over the water.\n\n"
        "A scene of ruin met her eyes. She had been a story-teller once."
    )
    report = narration_report(text)
    assert report.sentences == 6
    assert report.meta_sentences == 2
    assert report.meta_share == 2 / 6
    assert report.examples == [
        "The scene has ended because Isla left the room.",
        "In the next scene, she would have to face Tobias.",
    ]


def test_the_rate_is_a_book_metric_of_eval():
    flat = flatten(text_metrics("This chapter is about loss. Morag wept."))
    assert flat["narration.meta_share"] == 0.5
    assert any(m.source == "narration.meta_share" for m in METRICS)
    assert narration_report("").meta_share == 0.0


def test_speech_about_a_story_is_not_narration_about_the_text():
    assert is_meta_narration("The story must continue.")
    assert not is_meta_narration('"The story must continue," she said.')
    assert not is_meta_narration("She had watched a scene of ruin.")
