"""The studio's app in process (Starlette's TestClient), its guards and its helpers: seed and outline
problems beside their fields, nothing created on error, escaping, CSRF, Host and token checks, no
secret shown or logged, exports, metrics and charts, and the worker supervisor's rules."""

from __future__ import annotations

import html
import logging
import os
import re
import signal
import subprocess
import time
from urllib.parse import unquote

import pytest
from starlette.testclient import TestClient

from novelcraft.cli.main import app as cli_app
from novelcraft.core.errors import InputError
from novelcraft.core.seedfile import parse_seed
from novelcraft.settings.config import resolve_settings
from novelcraft.story.export import ExportFormat
from novelcraft.story.novel import Story
from novelcraft.studio.app import create_app
from novelcraft.studio.config import StudioConfig, check_bind, is_loopback, worker_args_from
from novelcraft.studio.reads import StoryFacts, redact
from novelcraft.studio.routes import content_disposition, slug
from novelcraft.studio.security import RedactTokens
from novelcraft.studio.workers import Job, Supervisor, _died_mid_draft, process_alive, start_ticks_of
from novelcraft.studio.yamlform import annotate, field_line, problems_of

SEED = "title: Harbor Lights\npremise: A keeper finds a letter.\ntarget_words: 900\nscenes: 3\nscene_words: 300\nseed: 2\n"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _config(tmp_path, **settings_flags) -> StudioConfig:
    db = tmp_path / "stories.db"
    settings = resolve_settings(env={}, flags={"backend": "fake", "db": db, **settings_flags})
    return StudioConfig(db=db, settings=settings, worker_args=("--backend", "fake"))


@pytest.fixture
def client(tmp_path):
    with TestClient(create_app(_config(tmp_path)), base_url="http://127.0.0.1:8765") as c:
        yield c


def _csrf(client: TestClient) -> str:
    return CSRF.search(client.get("/new").text).group(1)


def _post(client: TestClient, path: str, data: dict, **kwargs):
    return client.post(path, data={"csrf": _csrf(client), **data}, follow_redirects=False, **kwargs)


def _drafted_story(tmp_path, seed: str = SEED) -> str:
    settings = resolve_settings(env={}, flags={"backend": "fake", "db": tmp_path / "stories.db"})
    with Story.start(parse_seed(seed), settings) as story:
        story.draft()
        return story.id


def _problems_beside(page: str) -> dict[str, str]:
    rows = re.findall(
        r'<tr class="has-problem">\s*<td class="lineno">(\d+)</td>.*?<td class="field-problems">(.*?)</td>',
        page,
        re.S,
    )
    return {int(n): html.unescape(re.sub(r"<[^>]+>", "", text)).strip() for n, text in rows}


# the new-story form --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("seed", "line", "expected"),
    [
        ("title: T\npremise: p\ntarget_words: lots\n", 3, "target_words: Input should be a valid integer"),
        (
            "title: T\npremise: p\ncharacters:\n  - name: A\n  - description: no name\n",
            5,
            "characters.1.name: required",
        ),
        ("title: T\npremise: p\npov: sideways\n", 3, "pov: Input should be 'first', 'second' or 'third'"),
        ("title: T\npremise: [unclosed\n", 2, "YAML syntax error at line 3"),
        ("---\ntitle: T\nbogus: 1\n---\nThe premise is the body.\n", 3, "bogus: unknown key"),
    ],
)
def test_a_broken_seed_shows_each_problem_beside_its_field_and_creates_nothing(
    client, tmp_path, seed, line, expected
):
    response = _post(client, "/new", {"seed_text": seed, "action": "draft"})
    assert response.status_code == 400
    assert "no story was created" in response.text
    assert expected in _problems_beside(response.text)[line]
    assert not (tmp_path / "stories.db").exists()


def test_a_missing_field_is_listed_above_the_seed_and_an_undecodable_upload_is_refused(client, tmp_path):
    response = _post(client, "/new", {"seed_text": "title: No premise\n"})
    assert response.status_code == 400
    assert re.search(
        r'<ul class="loose">\s*<li class="problem"><code>premise</code>: required', response.text
    )
    upload = _post(
        client,
        "/new",
        {"seed_text": ""},
        files={"seed_file": ("seed.yaml", b"title: \xff\xfe\n", "text/yaml")},
    )
    assert upload.status_code == 400 and "not UTF-8 (byte 7)" in upload.text
    assert not (tmp_path / "stories.db").exists()


def test_seed_text_is_shown_as_text_never_as_markup(client):
    seed = SEED.replace("A keeper finds a letter.", "A keeper finds <script>alert('x')</script>.")
    created = _post(client, "/new", {"seed_text": seed, "action": "create"})
    assert created.status_code == 303
    page = client.get(created.headers["location"]).text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert "<script>alert" not in page


# guards --------------------------------------------------------------------------------------
def test_forms_need_their_csrf_token_and_this_studio_as_origin(client):
    assert client.post("/new", data={"seed_text": SEED}).status_code == 403
    assert client.post("/new", data={"seed_text": SEED, "csrf": "forged"}).status_code == 403
    token = _csrf(client)
    evil = client.post(
        "/new", data={"seed_text": SEED, "csrf": token}, headers={"Origin": "http://evil.example"}
    )
    assert evil.status_code == 403
    ok = client.post(
        "/new",
        data={"seed_text": SEED, "csrf": token},
        headers={"Origin": "http://127.0.0.1:8765"},
        follow_redirects=False,
    )
    assert ok.status_code == 303


def test_a_loopback_studio_answers_only_its_own_host_names(client):
    # A page elsewhere that points its own name at 127.0.0.1 (DNS rebinding) gets nothing.
    assert client.get("/", headers={"Host": "evil.example:8765"}).status_code == 400
    assert client.get("/", headers={"Host": "localhost:8765"}).status_code == 200
    assert client.get("/", headers={"Host": "[::1]:8765"}).status_code == 200


def test_pages_refuse_framing_and_inline_scripts(client):
    headers = client.get("/").headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"


def test_a_token_studio_answers_bearer_and_cookie_and_nothing_else(tmp_path):
    token = "a-long-enough-studio-token"
    config = StudioConfig(**{**_config(tmp_path).__dict__, "host": "0.0.0.0", "token": token})
    with TestClient(create_app(config), base_url="http://192.0.2.1:8765") as c:
        assert c.get("/").status_code == 401
        assert c.get("/static/studio.css").status_code == 401
        assert c.get("/", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        opened = c.get(f"/?token={token}", follow_redirects=False)
        assert opened.status_code == 303 and opened.headers["location"] == "/"
        assert c.get("/").status_code == 200  # the cookie set by that redirect


def test_binding_beyond_loopback_needs_a_long_token():
    for host in ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"):
        assert is_loopback(host)
        check_bind(host, None)
    for host in ("0.0.0.0", "::", "192.168.1.4", "studio.example"):
        assert not is_loopback(host)
        with pytest.raises(InputError, match="--token"):
            check_bind(host, None)
    with pytest.raises(InputError, match="at least 16"):
        check_bind("0.0.0.0", "short")
    check_bind("0.0.0.0", "x" * 16)


def test_the_token_comes_from_the_environment_too(runner, monkeypatch, tmp_path):
    monkeypatch.setenv("NOVELCRAFT_STUDIO_TOKEN", "short")
    result = runner.invoke(
        cli_app, ["--backend", "fake", "studio", "--db", str(tmp_path / "s.db"), "--host", "0.0.0.0"]
    )
    assert result.exit_code == 2
    assert "--token: 5 characters" in result.output


def test_the_access_log_never_shows_the_token():
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "",
        0,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/?token=s3cret-s3cret&x=1", "1.1", 303),
        None,
    )
    RedactTokens().filter(record)
    assert "s3cret" not in record.getMessage() and "token=(hidden)&x=1" in record.getMessage()


def test_settings_shown_name_the_key_variable_never_its_value(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_STUDIO_KEY", "sk-do-not-show-me")
    config = _config(tmp_path, backend_options={"openai": {"api_key_env": "MY_STUDIO_KEY"}})
    with TestClient(create_app(config), base_url="http://127.0.0.1:8765") as c:
        created = _post(c, "/new", {"seed_text": SEED, "action": "create"})
        page = c.get(created.headers["location"]).text
    assert "api_key_env: MY_STUDIO_KEY" in page
    assert "sk-do-not-show-me" not in page
    assert redact({"openai": {"api_key": "sk-1", "api_key_env": "K", "token": "t"}}) == {
        "openai": {"api_key": "(hidden)", "api_key_env": "K", "token": "(hidden)"}
    }


# a drafted story -----------------------------------------------------------------------------
def test_a_drafted_story_reads_exports_and_measures(client, tmp_path):
    story_id = _drafted_story(tmp_path)
    assert "Harbor Lights" in client.get("/").text
    page = client.get(f"/stories/{story_id}").text
    assert 'id="scene-count">3/3<' in page and 'id="status">done<' in page
    assert client.get(f"/stories/{story_id}/progress").json()["scenes_done"] == 3
    scene = client.get(f"/stories/{story_id}/scenes/2")
    assert scene.status_code == 200 and 'id="version">version 1<' in scene.text
    assert client.get(f"/stories/{story_id}/scenes/9").status_code == 404
    assert client.get("/stories/nope").status_code == 404

    md = client.get(f"/stories/{story_id}/export/md")
    assert md.status_code == 200
    assert 'filename="harbor-lights.md"' in md.headers["content-disposition"]
    assert md.text.startswith("# Harbor Lights")
    for fmt in {f.value for f in ExportFormat} - {"md"}:  # EPUB and DOCX are zip files
        book = client.get(f"/stories/{story_id}/export/{fmt}")
        assert book.status_code == 200 and book.content.startswith(b"PK"), fmt
        assert f'filename="harbor-lights.{fmt}"' in book.headers["content-disposition"]
    assert client.get(f"/stories/{story_id}/export/pdf").status_code == 404

    metrics = client.get(f"/stories/{story_id}/metrics").text
    assert "rep-4 (500-word windows)" in metrics and "MTLD" in metrics
    assert "adherence: lexical lift" in metrics and "threads: opened" in metrics
    for name in ("ranges", "per_scene"):
        png = client.get(f"/stories/{story_id}/charts/{name}.png")
        assert png.headers["content-type"] == "image/png" and png.content.startswith(b"\x89PNG")


def test_a_unicode_title_keeps_its_letters_in_the_download_name(client, tmp_path):
    story_id = _drafted_story(tmp_path, SEED.replace("Harbor Lights", "Café Ærø — Ünïcode"))
    for fmt in ("md", "epub"):
        header = client.get(f"/stories/{story_id}/export/{fmt}").headers["content-disposition"]
        # RFC 5987 for the clients that read it (all browsers), plain ASCII for the rest.
        written = re.search(r"filename\*=UTF-8''([^;\s]+)", header)
        assert written and unquote(written.group(1), errors="strict") == f"café-ærø-ünïcode.{fmt}", header
        assert f'filename="cafe-aero-unicode.{fmt}"' in header


def test_a_download_name_holds_no_path_quote_or_control_character():
    assert slug('../a/b\\c:d*e?f"g<h>i|j\x00k\nl') == "a-b-c-d-e-f-g-h-i-j-k-l"
    assert slug("東京物語") == "東京物語" and slug("हिन्दी कहानी") == "हिन्दी-कहानी"
    assert slug("!!!") == "novel" and len(slug("é" * 500).encode()) <= 200
    assert content_disposition("harbor-lights.md") == 'attachment; filename="harbor-lights.md"'


def test_an_outline_edit_with_problems_changes_nothing_and_a_good_one_makes_scenes_stale(client, tmp_path):
    story_id = _drafted_story(tmp_path)
    form = client.get(f"/stories/{story_id}/outline/edit").text
    text = re.search(r'<textarea id="outline_text"[^>]*>(.*?)</textarea>', form, re.S).group(1)
    text = html.unescape(text)
    goals = re.findall(r"^(\s+- goal: )(.*)$", text, re.M)
    assert len(goals) == 3
    broken = text.replace("acts:", "acts:\n- title: ''\n  chapters: []", 1)
    refused = _post(client, f"/stories/{story_id}/outline/edit", {"outline_text": broken})
    assert refused.status_code == 400 and "the outline is unchanged" in refused.text
    assert "acts.0.title: String should have at least 1 character" in _problems_beside(refused.text)[4]
    with Story.open(story_id, tmp_path / "stories.db") as story:
        assert len(story.outline().scene_goals()) == 3

    prefix, last_goal = goals[2]
    edited = text.replace(prefix + last_goal, prefix + "The keeper burns the ledger at dawn.")
    saved = _post(client, f"/stories/{story_id}/outline/edit", {"outline_text": edited})
    assert saved.status_code == 303 and saved.headers["location"].endswith("saved=1&stale_from=3")
    outline = client.get(saved.headers["location"]).text
    assert "The keeper burns the ledger at dawn." in outline and "Scenes from 3 on are stale" in outline
    assert 'id="draft">Resume drafting<' in client.get(f"/stories/{story_id}").text  # stale work to redo


def test_locks_and_versions_from_the_scene_page(client, tmp_path):
    story_id = _drafted_story(tmp_path)
    assert _post(client, f"/stories/{story_id}/scenes/2/lock", {"locked": "1"}).status_code == 303
    page = client.get(f"/stories/{story_id}/scenes/2").text
    assert 'id="locked">locked<' in page and 'id="unlock"' in page
    refused = _post(client, f"/stories/{story_id}/scenes/2/redraft", {})
    assert refused.status_code == 409 and "locked" in refused.text
    _post(client, f"/stories/{story_id}/scenes/2/lock", {"locked": "0"})
    assert 'id="lock"' in client.get(f"/stories/{story_id}/scenes/2").text

    with Story.open(story_id, tmp_path / "stories.db") as story:
        story.redraft(1)
    assert 'id="use-1"' in client.get(f"/stories/{story_id}/scenes/1").text
    assert _post(client, f"/stories/{story_id}/scenes/1/use", {"version": "1"}).status_code == 303
    page = client.get(f"/stories/{story_id}/scenes/1").text
    assert 'id="version">version 1<' in page and 'id="use-2"' in page
    assert "the book uses version 1" in client.get(f"/stories/{story_id}/scenes/1?version=2").text


def test_continuity_flags_are_listed_as_text(client, tmp_path):
    story_id = _drafted_story(tmp_path)
    flag = {
        "category": "character",
        "claim": "Ada's <i>eyes</i> are green",
        "evidence": "her green eyes",
        "conflicts_with": "Ada",
    }
    with Story.open(story_id, tmp_path / "stories.db") as story:
        story.store.save_flags(story_id, 1, 1, [flag], redrafted=False)
    page = client.get(f"/stories/{story_id}/flags").text
    assert "Ada&#39;s &lt;i&gt;eyes&lt;/i&gt; are green" in page and "<i>eyes" not in page
    assert "her green eyes" in client.get(f"/stories/{story_id}/scenes/2").text
    assert "her green eyes" not in client.get(f"/stories/{story_id}/scenes/1").text


# helpers -------------------------------------------------------------------------------------
def test_a_field_is_found_however_deep_it_is():
    outline = "acts:\n- title: One\n  chapters:\n  - title: A\n    scenes:\n    - goal: g1\n    - goal: ''\n"
    assert field_line(outline, ["acts", "0", "chapters", "0", "scenes", "1", "goal"]) == 7
    assert field_line(outline, ["acts", "0", "chapters", "0", "scenes", "5", "goal"]) == 5  # its parent
    assert field_line(outline, ["missing"]) is None
    loose, lines = annotate(
        outline, problems_of(["outline: field 'acts.0.title': bad", "outline: no acts"], outline)
    )
    assert [p.message for p in loose] == ["outline: no acts"]
    assert [p.message for p in lines[1].problems] == ["bad"]


def test_worker_args_carry_the_root_options_but_not_the_database(tmp_path):
    params = {
        "db": tmp_path / "x.db",
        "backend": "fake",
        "model": None,
        "base_url": "http://h:1/v1",
        "adapter": "noir",
        "option": ["latency_ms=5"],
        "config": None,
    }
    assert worker_args_from(params) == (
        "--backend",
        "fake",
        "--base-url",
        "http://h:1/v1",
        "--adapter",
        "noir",
        "-o",
        "latency_ms=5",
    )


# the worker supervisor -----------------------------------------------------------------------
def test_one_studio_per_database(tmp_path):
    first = Supervisor(_config(tmp_path))
    first.open()
    try:
        with pytest.raises(InputError, match="another studio serves this database"):
            Supervisor(_config(tmp_path)).open()
    finally:
        first.close()
    second = Supervisor(_config(tmp_path))
    second.open()  # the lock went with the first
    second.close()


def test_a_zombie_or_a_reused_pid_is_not_a_live_worker():
    child = subprocess.Popen(["sleep", "30"])
    try:
        ticks = start_ticks_of(child.pid)
        assert process_alive(child.pid, ticks)
        assert not process_alive(child.pid, ticks + 1)  # the same pid, another process
        os.kill(child.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while process_alive(child.pid, ticks):  # unreaped: a zombie
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        child.kill()
        child.wait()
    assert not process_alive(child.pid, ticks)


def test_what_goes_on_after_a_worker_died():
    assert Job("s").resumed() == Job("s", "resume", relaunches=1)
    assert Job("s", "outline").resumed().kind == "outline"
    assert Job("s", "redraft", 3, cascade=True).resumed() == Job("s", "resume", relaunches=1)
    assert Job("s", "redraft", 3).resumed() is None  # it would write another version
    started = "2026-01-01T10:00:05+00:00"
    assert _died_mid_draft(StoryFacts("drafting", "2026-01-01T10:00:09+00:00", 2), started)
    assert _died_mid_draft(StoryFacts("created", "2026-01-01T10:00:05+00:00", 0), started)  # never began
    assert not _died_mid_draft(StoryFacts("stopped", "2026-01-01T10:00:09+00:00", 2), started)
    assert not _died_mid_draft(StoryFacts("done", "2026-01-01T10:00:09+00:00", 3), started)


def test_stories_past_the_cap_wait_in_line_and_a_stop_drops_a_waiting_one(tmp_path):
    config = StudioConfig(**{**_config(tmp_path).__dict__, "max_workers": 1, "poll_s": 0.1})
    ids = []
    for n in range(3):
        with Story.start(parse_seed(SEED.replace("seed: 2", f"seed: {n}")), config.settings) as story:
            ids.append(story.id)
    supervisor = Supervisor(config)
    supervisor.start_polling()
    try:
        assert supervisor.request(ids[0]).state == "running"
        assert supervisor.request(ids[1]).queue_position == 1
        assert supervisor.request(ids[2]).queue_position == 2
        with pytest.raises(InputError, match="already has a worker"):
            supervisor.request(ids[1])
        assert supervisor.stop(ids[2]).state == "idle"  # dropped from the line, never started
        deadline = time.monotonic() + 120
        while supervisor.busy(ids[0]) or supervisor.busy(ids[1]):
            assert supervisor.running_count() <= 1
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        supervisor.close()
    statuses = []
    for story_id in ids:
        with Story.open(story_id, config.db) as story:
            statuses.append(story.status)
    assert statuses == ["done", "done", "created"]
    assert supervisor.state_of(ids[1]).ended.exit_code == 0


def test_the_studio_reads_what_its_workers_can_do_from_the_cli():
    import typer

    from novelcraft.studio.cli import has_option

    root = typer.main.get_command(cli_app)
    assert has_option(root, "resume", "as_json")
    assert has_option(root, "redraft", "cascade")
    assert not has_option(root, "resume", "no_such_option")
    assert not has_option(root, "no_such_command", "review")
