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
    assert 'id="draft">Redo the stale parts<' in client.get(f"/stories/{story_id}").text  # stale work to redo


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


# what an author's trial found ----------------------------------------------------------------
def test_numbers_no_book_has_answer_404_or_400_with_a_line(client, tmp_path):
    story_id = _drafted_story(tmp_path)
    huge = client.get(f"/stories/{story_id}/scenes/99999999999999999999999")
    assert huge.status_code == 404 and "no such scene" in huge.text
    assert client.get(f"/stories/{story_id}/scenes/0").status_code == 404
    for version in ("²", "1e3", "99999999999999999999"):
        bad = client.get(f"/stories/{story_id}/scenes/1", params={"version": version})
        assert bad.status_code == 400 and "version: not a whole number" in bad.text
    assert client.get(f"/stories/{story_id}/outline?saved=1&stale_from=²").status_code == 400
    refused = _post(client, f"/stories/{story_id}/scenes/99999999999999999999999/lock", {"locked": "1"})
    assert refused.status_code == 404
    assert _post(client, f"/stories/{story_id}/scenes/1/use", {"version": "²"}).status_code == 400


def test_a_deeply_nested_seed_is_a_problem_line_not_a_server_error(client):
    nested = "title: T\npremise: p\nstyle: " + "[" * 3000 + "]" * 3000 + "\n"
    page = _post(client, "/new", {"seed_text": nested, "action": "create"})
    assert page.status_code == 400 and "nested too deeply" in page.text
    assert "Harbor" not in client.get("/").text and "/stories/" not in client.get("/").text


def test_a_paste_that_is_not_utf8_is_refused_like_an_upload(client):
    body = f"csrf={_csrf(client)}&action=create&seed_text=title%3A+Caf%E9%0Apremise%3A+p%0A".encode()
    page = client.post(
        "/new",
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert page.status_code == 400 and "not UTF-8" in page.text
    assert "/stories/" not in client.get("/").text


def test_the_token_is_hidden_in_the_log_however_its_key_is_spelled():
    for path in ("/?tok%65n=s3cret-s3cret&x=1", "/?x=1&%74oken=s3cret-s3cret", "/?token=s3cret-s3cret"):
        record = logging.LogRecord(
            "uvicorn.access",
            logging.INFO,
            "",
            0,
            '%s - "%s %s HTTP/%s" %d',
            ("h", "GET", path, "1.1", 303),
            None,
        )
        RedactTokens().filter(record)
        assert "s3cret" not in record.getMessage() and "=(hidden)" in record.getMessage(), path


def test_a_count_of_tokens_is_no_secret():
    shown = redact({"bible_tokens": 200, "max_tokens": 64, "hf_token": "hf_x", "openai": {"token": "t"}})
    assert shown == {
        "bible_tokens": 200,
        "max_tokens": 64,
        "hf_token": "(hidden)",
        "openai": {"token": "(hidden)"},
    }


def test_the_token_comes_from_a_file(runner, tmp_path):
    short = tmp_path / "token"
    short.write_text("short\n")
    args = ["--backend", "fake", "studio", "--db", str(tmp_path / "s.db"), "--host", "0.0.0.0"]
    result = runner.invoke(cli_app, [*args, "--token-file", str(short)])
    assert result.exit_code == 2 and "--token: 5 characters" in result.output
    result = runner.invoke(cli_app, [*args, "--token-file", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "--token-file" in result.output and "cannot read" in result.output
    result = runner.invoke(cli_app, [*args, "--token-file", str(short), "--token", "x" * 20])
    assert result.exit_code == 2 and "give the token once" in result.output


def test_a_story_with_no_scene_offers_no_download(client, tmp_path):
    created = _post(client, "/new", {"seed_text": SEED, "action": "create"})
    story_id = created.headers["location"].rsplit("/", 1)[1]
    page = client.get(f"/stories/{story_id}").text
    assert 'id="no-exports"' in page and "/export/" not in page
    assert client.get(f"/stories/{story_id}/export/md").status_code == 404
    drafted = _drafted_story(tmp_path)
    assert 'id="export-md"' in client.get(f"/stories/{drafted}").text


def test_a_locked_scene_keeps_its_version_and_an_import_says_your_text(client, tmp_path):
    story_id = _drafted_story(tmp_path)
    with Story.open(story_id, tmp_path / "stories.db") as story:
        story.import_scene(1, "My own words for this scene, every one of them mine.")
    _post(client, f"/stories/{story_id}/scenes/1/lock", {"locked": "1"})
    page = client.get(f"/stories/{story_id}/scenes/1").text
    assert "your text" in page
    assert re.search(r'id="use-1" disabled', page)
    refused = _post(client, f"/stories/{story_id}/scenes/1/use", {"version": "1"})
    assert refused.status_code == 409 and "locked" in refused.text
    with Story.open(story_id, tmp_path / "stories.db") as story:
        assert story.scene(1).version == 2


def test_an_outline_saved_while_a_worker_drafts_comes_back_with_the_text(tmp_path):
    story_id = _drafted_story(tmp_path)

    class Busy(Supervisor):
        def busy(self, story_id: str) -> bool:
            return True

    config = _config(tmp_path)
    with TestClient(create_app(config, Busy(config)), base_url="http://127.0.0.1:8765") as c:
        edited = "# my careful edit, kept\nacts: []\n"
        page = _post(c, f"/stories/{story_id}/outline/edit", {"outline_text": edited})
    assert page.status_code == 409
    assert "my careful edit, kept" in page.text and "stop it, then save again" in page.text


def test_the_outline_page_goes_on_drafting_after_a_save(client, tmp_path):
    story_id = _drafted_story(tmp_path)
    assert 'id="continue-drafting"' not in client.get(f"/stories/{story_id}/outline").text
    page = client.get(f"/stories/{story_id}/outline?saved=1&stale_from=2").text
    assert 'id="continue-drafting"' in page and f'action="/stories/{story_id}/draft"' in page


def test_the_panel_never_says_writing_a_scene_it_will_not_write(tmp_path):
    from novelcraft.studio.reads import current_work
    from novelcraft.studio.workers import WorkerState

    story_id = _drafted_story(tmp_path)
    with Story.open(story_id, tmp_path / "stories.db") as story:
        # An outline run ends at the outline; a run with every scene written is closing the book.
        outline_run = current_work(story, WorkerState(state="running", kind="outline"))
        assert outline_run["phase"] == "preparing the world and the outline" and outline_run["scene"] is None
        finishing = current_work(story, WorkerState(state="running", kind="resume"))
        assert finishing == {"phase": "finishing the book", "scene": None, "goal": None, "chapter": None}


# the author's desk ---------------------------------------------------------------------------
def _edit_form(client: TestClient, story_id: str, number: int) -> tuple[str, str]:
    form = client.get(f"/stories/{story_id}/scenes/{number}/edit").text
    text = html.unescape(re.search(r'<textarea id="scene_text"[^>]*>(.*?)</textarea>', form, re.S).group(1))
    return text, re.search(r'name="based_on" value="(\d+)"', form).group(1)


def test_an_edited_scene_is_a_new_version_and_the_summaries_after_it_go_stale(client, tmp_path):
    story_id = _drafted_story(tmp_path)
    text, based_on = _edit_form(client, story_id, 2)
    with Story.open(story_id, tmp_path / "stories.db") as story:
        assert text == story.scene(2).text and based_on == "1"
        assert story.summarised() == {1, 2, 3}
    edited = text.replace(text.split()[0], "Nobody", 1) + "\n\nAnd then the lamp went out."
    # As a browser posts a text area: CRLF line breaks, kept as LF.
    as_posted = edited.replace("\n", "\r\n")
    saved = _post(
        client, f"/stories/{story_id}/scenes/2/edit", {"scene_text": as_posted, "based_on": based_on}
    )
    assert saved.status_code == 303 and saved.headers["location"].endswith("/scenes/2?saved=2")
    page = client.get(saved.headers["location"]).text
    assert 'id="scene-saved"' in page and "summaries from scene 2 on are stale" in page
    assert f'data-clear-draft="novelcraft-draft:{story_id}:2"' in page
    with Story.open(story_id, tmp_path / "stories.db") as story:
        scene = story.scene(2)
        assert scene.version == 2 and scene.source == "author" and scene.text == edited.strip()
        assert story.scene(2, 1).text == text  # the model's version is kept
        assert story.summarised() == {1}  # scene 2's summary and those after it are recomputed on resume
    assert "your text" in page


def test_an_edit_that_conflicts_or_cannot_be_saved_comes_back_whole(client, tmp_path):
    story_id = _drafted_story(tmp_path)
    text, based_on = _edit_form(client, story_id, 1)
    with Story.open(story_id, tmp_path / "stories.db") as story:
        story.redraft(1)  # a redraft finished while the author was editing
    mine = "My version of the scene, which I will not lose."
    refused = _post(client, f"/stories/{story_id}/scenes/1/edit", {"scene_text": mine, "based_on": based_on})
    assert refused.status_code == 409
    assert "is at version 2 now, not 1" in html.unescape(refused.text) and mine in refused.text
    assert 'name="based_on" value="2"' in refused.text  # saving again makes it the newest version
    with Story.open(story_id, tmp_path / "stories.db") as story:
        assert story.scene(1).version == 2 and len(story.versions(1)) == 2
    again = _post(client, f"/stories/{story_id}/scenes/1/edit", {"scene_text": mine, "based_on": "2"})
    assert again.status_code == 303
    empty = _post(client, f"/stories/{story_id}/scenes/1/edit", {"scene_text": "  ", "based_on": "3"})
    assert empty.status_code == 400 and "the imported text is empty" in empty.text
    _post(client, f"/stories/{story_id}/scenes/1/lock", {"locked": "1"})
    locked = _post(client, f"/stories/{story_id}/scenes/1/edit", {"scene_text": mine + "!", "based_on": "3"})
    assert locked.status_code == 409 and "is locked" in locked.text and mine + "!" in locked.text
    with Story.open(story_id, tmp_path / "stories.db") as story:
        assert [v.version for v in story.versions(1)] == [1, 2, 3] and story.scene(1).text == mine


def test_two_versions_side_by_side_word_by_word(client, tmp_path):
    from novelcraft.studio.diff import word_diff

    pieces = word_diff("The keeper lit the lamp.\n\nShe slept.", "The old keeper lit a lamp.\n\nShe slept.")
    assert [(p.op, p.text) for p in pieces] == [
        ("same", "The"),
        ("added", " old"),
        ("same", " keeper lit"),
        ("removed", " the"),
        ("added", " a"),
        ("same", " lamp.\n\nShe slept."),
    ]
    # Spacing alone (another line break) is no change.
    assert [p.op for p in word_diff("One two.\n\nThree.", "One two.\r\n\r\nThree.")] == ["same"]
    story_id = _drafted_story(tmp_path)
    with Story.open(story_id, tmp_path / "stories.db") as story:
        first = story.scene(2).text
        story.import_scene(2, first.replace(first.split()[1], "<b>lantern</b>", 1))
    page = client.get(f"/stories/{story_id}/scenes/2").text
    assert 'id="diff-1"' in page
    diff = client.get(f"/stories/{story_id}/scenes/2/diff").text  # the older against the one in use
    assert "version 1 against 2" in diff
    assert (
        "<ins> &lt;b&gt;lantern&lt;/b&gt;</ins>" in diff
        and f"<del> {html.escape(first.split()[1])}</del>" in diff
    )
    assert 'id="diff-use-1"' in diff
    assert _post(client, f"/stories/{story_id}/scenes/2/use", {"version": "1"}).status_code == 303
    assert client.get(f"/stories/{story_id}/scenes/2/diff?a=9").status_code == 404


def _route_paths(story_id: str) -> list[tuple[str, str]]:
    from novelcraft.studio.routes import ROUTES

    values = {"story_id": story_id, "number:int": "1", "name": "words", "fmt": "md"}
    out = []
    for route in ROUTES:
        path = re.sub(r"\{([^}]+)\}", lambda m: values[m.group(1)], route.path)
        out += [(method, path) for method in sorted(route.methods or ()) if method != "HEAD"]
    return out


def test_every_post_route_needs_its_csrf_token_and_every_route_the_studio_token(tmp_path):
    story_id = _drafted_story(tmp_path)
    routes = _route_paths(story_id)
    posts = [path for method, path in routes if method == "POST"]
    assert {"/new", f"/stories/{story_id}/scenes/1/edit"} <= set(posts)
    with TestClient(create_app(_config(tmp_path)), base_url="http://127.0.0.1:8765") as c:
        c.get("/")  # the CSRF cookie
        for path in posts:
            assert c.post(path, data={}).status_code == 403, path
            assert c.post(path, data={"csrf": "forged"}).status_code == 403, path
    token = "a-long-enough-studio-token"
    config = StudioConfig(**{**_config(tmp_path).__dict__, "host": "0.0.0.0", "token": token})
    with TestClient(create_app(config), base_url="http://192.0.2.1:8765") as c:
        for method, path in routes:
            assert c.request(method, path).status_code == 401, (method, path)


def test_a_save_cut_off_half_way_leaves_the_scene_as_it_was(client, tmp_path, monkeypatch):
    from novelcraft.runtime.store import Store

    story_id = _drafted_story(tmp_path)
    text, based_on = _edit_form(client, story_id, 1)
    real = Store.save_scene

    def dies_after_writing(self, *args, **kwargs):
        real(self, *args, **kwargs)
        raise KeyboardInterrupt  # the process stopped between the version's write and the commit

    monkeypatch.setattr(Store, "save_scene", dies_after_writing)
    with Story.open(story_id, tmp_path / "stories.db") as story, pytest.raises(KeyboardInterrupt):
        story.import_scene(1, "Half of an edit.", based_on=int(based_on))
    with Story.open(story_id, tmp_path / "stories.db") as story:
        assert [v.version for v in story.versions(1)] == [1] and story.scene(1).text == text
        assert story.summarised() == {1, 2, 3}


def test_the_whole_book_reads_chapter_by_chapter(client, tmp_path):
    story_id = _drafted_story(tmp_path)
    page = client.get(f"/stories/{story_id}/read").text
    with Story.open(story_id, tmp_path / "stories.db") as story:
        scenes = story.scenes()
        chapters = list(dict.fromkeys(s.chapter_title for s in scenes))
    assert re.findall(r'<nav class="chapters".*?</nav>', page, re.S)
    assert [html.unescape(t) for t in re.findall(r'<a href="#chapter-\d+">(.*?)</a>', page)] == chapters
    body = html.unescape(re.sub(r"<[^>]+>", " ", page))
    for scene in scenes:
        assert " ".join(scene.text.split()[:12]) in " ".join(body.split())
    assert [int(n) for n in re.findall(r'id="scene-(\d+)"', page)] == [s.idx + 1 for s in scenes]
    created = _post(client, "/new", {"seed_text": SEED, "action": "create"})
    empty = client.get(created.headers["location"] + "/read").text
    assert "No scene drafted yet." in empty


def test_a_selected_passage_is_rewritten_then_accepted_or_discarded(client, tmp_path):
    story_id = _drafted_story(tmp_path)
    with Story.open(story_id, tmp_path / "stories.db") as story:
        text = story.scene(2).text
    passage = " ".join(text.split()[5:25])
    asked = _post(
        client,
        f"/stories/{story_id}/scenes/2/rewrite",
        {"passage": passage, "kind": "expand", "note": "more menace"},
    )
    assert asked.status_code == 200 and 'id="rewrite-proposal"' in asked.text
    proposal = html.unescape(re.search(r'name="proposal" value="([^"]*)"', asked.text).group(1))
    assert proposal.strip() and html.escape(passage, quote=False) in asked.text
    with Story.open(story_id, tmp_path / "stories.db") as story:
        calls = [c for c in story.store.calls(story_id) if c["template"] == "rewrite.j2"]
        assert len(calls) == 1 and calls[0]["scene_index"] == 1 and calls[0]["outcome"] == "ok"
        assert len(story.versions(2)) == 1  # asking changes nothing

    accepted = _post(
        client,
        f"/stories/{story_id}/scenes/2/rewrite/accept",
        {"passage": passage, "proposal": proposal, "based_on": "1"},
    )
    assert accepted.status_code == 303 and accepted.headers["location"].endswith("?saved=2")
    with Story.open(story_id, tmp_path / "stories.db") as story:
        scene = story.scene(2)
        assert scene.version == 2 and scene.source == "rewrite"
        assert proposal.strip() in scene.text and " ".join(text.split()[:5]) in scene.text
    # A second acceptance of a proposal made for version 1: the scene has changed since.
    again = _post(
        client,
        f"/stories/{story_id}/scenes/2/rewrite/accept",
        {"passage": proposal, "proposal": "Another take.", "based_on": "1"},
    )
    assert again.status_code == 409 and "ask for the rewrite again" in again.text


def test_a_rewrite_asks_only_for_a_passage_of_the_scene(client, tmp_path):
    story_id = _drafted_story(tmp_path)
    path = f"/stories/{story_id}/scenes/1/rewrite"
    assert _post(client, path, {"passage": "", "kind": "rewrite"}).status_code == 400
    missing = _post(client, path, {"passage": "words that are in no scene at all", "kind": "rewrite"})
    assert missing.status_code == 400 and "not in the scene's text" in html.unescape(missing.text)
    assert _post(client, path, {"passage": "x", "kind": "summon"}).status_code == 400
    with Story.open(story_id, tmp_path / "stories.db") as story:
        assert not [c for c in story.store.calls(story_id) if c["template"] == "rewrite.j2"]
