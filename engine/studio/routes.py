"""The studio's pages and actions: each handler opens the story, calls the Story API (or a read in
novelcraft.studio.reads), and renders a template or redirects. Drafting, redrafting and outlining are
handed to the worker supervisor; nothing slow runs inside a request but an export, the metrics and a
selection's rewrite (one model call, in a thread off the event loop). A story whose worker runs is not
edited under it: its outline, versions, locks and texts wait (409), and a refused text comes back in
its form."""

from __future__ import annotations

import mimetypes
import re
import shutil
import tempfile
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args
from urllib.parse import quote

import yaml
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from novelcraft.core.errors import InputError, NovelcraftError, StoreError, StoryNotFound
from novelcraft.core.schema import Scene
from novelcraft.core.seedfile import parse_seed
from novelcraft.drafting.outline_edit import outline_yaml
from novelcraft.drafting.rewrite import RewriteKind
from novelcraft.settings.config import Settings
from novelcraft.settings.experts import load_registry
from novelcraft.story.export import ExportFormat
from novelcraft.story.novel import DraftFailed, Story, VersionConflict
from novelcraft.studio import reads
from novelcraft.studio.charts import CHARTS, chart_png
from novelcraft.studio.diff import word_diff
from novelcraft.studio.evaluation import metric_rows
from novelcraft.studio.security import CSRF_FIELD, form_post
from novelcraft.studio.yamlform import EXAMPLE_SEED, annotate, decode_upload, problems_of

if TYPE_CHECKING:
    from novelcraft.studio.app import Studio

MEDIA_TYPES = {
    "md": "text/markdown; charset=utf-8",
    "epub": "application/epub+zip",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}


def studio_of(request: Request) -> Studio:
    return request.app.state.studio


def page(request: Request, template: str, status: int = 200, headers: dict | None = None, **context: Any):
    context = {
        "csrf": request.state.csrf,
        "csrf_field": CSRF_FIELD,
        "features": {"outline_review": studio_of(request).config.outline_review},
        "formats": [f.value for f in ExportFormat],
        "error": None,
        **context,
    }
    return studio_of(request).templates.TemplateResponse(
        request, template, context, status_code=status, headers=headers
    )


def open_story(request: Request) -> Story:
    return Story.open(request.path_params["story_id"], studio_of(request).config.db)


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def local_path(value: object, default: str) -> str:
    """A page of this studio to go back to: never a redirect to another site."""
    path = str(value or "")
    return path if path.startswith("/") and not path.startswith("//") else default


def _refuse_while_busy(request: Request) -> None:
    story_id = request.path_params["story_id"]
    if studio_of(request).supervisor.busy(story_id):
        raise HTTPException(409, f"a worker is drafting story {story_id}; stop it first")


def _drafted_scene(story: Story, number: int, version: int | None = None) -> Scene:
    try:
        return story.scene(number, version)
    except InputError as exc:
        raise HTTPException(404, exc.lines[0]) from None


# Scene and version numbers past this are no scene of any book (and past SQLite's integers, an error).
MAX_NUMBER = 10**9


def scene_number(request: Request) -> int:
    """The scene number of the address; one no book has is 404, however large."""
    number = request.path_params["number"]
    if not 1 <= number <= MAX_NUMBER:
        raise HTTPException(404, "no such scene" if number > MAX_NUMBER else f"no scene {number}")
    return number


def whole_number(value: object, name: str) -> int | None:
    """A number given in a query or a form (None when not given); anything else but ASCII digits
    ("²", "1e3", a number past MAX_NUMBER) is 400 with a line naming the field."""
    text = str(value or "")
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_NUMBER:
        raise HTTPException(400, f"{name}: not a whole number: {text[:20]!r}")
    return int(text)


def form_text(form: FormData, field: str) -> str:
    """A text field as the browser sent it. Text that was not UTF-8 reaches us with U+FFFD in place of
    each byte it could not read: refused like an upload that is not UTF-8, never saved as "Caf\ufffd"."""
    # A browser sends a text area's line breaks as CRLF (HTML's form encoding): the book keeps LF.
    text = str(form.get(field) or "").replace("\r\n", "\n").replace("\r", "\n")
    if "\ufffd" in text:
        line = text[: text.index("\ufffd")].count("\n") + 1
        raise InputError(f"not UTF-8 (a character on line {line} could not be read)")
    return text


# stories -----------------------------------------------------------------------------------
def _stories_context(request: Request) -> dict:
    studio = studio_of(request)
    rows = reads.story_rows(studio.config.db)
    for row in rows:
        row["worker"] = studio.supervisor.state_of(row["story_id"])
    return {"rows": rows, "live": any(row["worker"].busy for row in rows), "db": studio.config.db}


def stories_page(request: Request) -> Response:
    return page(request, "stories.html", **_stories_context(request))


def stories_fragment(request: Request) -> Response:
    context = _stories_context(request)
    return page(
        request, "_stories_table.html", headers={"X-Studio-Live": str(int(context["live"]))}, **context
    )


# a new story -------------------------------------------------------------------------------
def new_story_page(request: Request) -> Response:
    return page(request, "new_story.html", seed_text="", example=EXAMPLE_SEED, loose=[], lines=[])


@form_post
async def create_story(request: Request, form: FormData) -> Response:
    """Create a story from the pasted or uploaded seed; on any problem show the form again with each
    problem next to its field, and create nothing."""
    studio = studio_of(request)
    text = str(form.get("seed_text") or "")
    upload = form.get("seed_file")
    try:
        if isinstance(upload, UploadFile) and upload.filename:
            text = decode_upload(await upload.read())
        else:
            text = form_text(form, "seed_text")
        # A big seed takes seconds to parse: off the event loop, which serves every other request.
        seed = await run_in_threadpool(parse_seed, text)
        story = await run_in_threadpool(Story.start, seed, studio.config.settings, source="seed")
    except InputError as exc:
        loose, lines = annotate(text, problems_of(exc.lines, text, front_matter=True))
        context = {"seed_text": text, "example": EXAMPLE_SEED, "loose": loose, "lines": lines}
        return page(request, "new_story.html", 400, problem_count=len(exc.lines), **context)
    story_id = story.id
    story.close()
    action = form.get("action")
    if action == "draft":
        studio.supervisor.request(story_id)
    elif action == "outline" and studio.config.outline_review:
        studio.supervisor.request(story_id, "outline")
    return see_other(f"/stories/{story_id}")


# one story ---------------------------------------------------------------------------------
def _story_context(request: Request, story: Story) -> dict:
    studio = studio_of(request)
    worker = studio.supervisor.state_of(story.id)
    seed = story.seed
    return {
        "story": story.summary_row(),
        "seed": seed,
        "seed_yaml": yaml.safe_dump(seed.model_dump(exclude_none=True), sort_keys=False, allow_unicode=True),
        "progress": reads.progress(story, worker),
        "worker": worker,
        "scenes": reads.scene_rows(story),
        "flag_count": len(story.flags()),
        "settings_yaml": yaml.safe_dump(reads.shown_settings(story), sort_keys=False),
        "log_tail": studio.supervisor.log_tail(story.id) if worker.ended else "",
    }


def story_page(request: Request) -> Response:
    with open_story(request) as story:
        context = _story_context(request, story)
    return page(request, "story.html", **context)


def progress_json(request: Request) -> Response:
    with open_story(request) as story:
        return JSONResponse(reads.progress(story, studio_of(request).supervisor.state_of(story.id)))


def panel_fragment(request: Request) -> Response:
    with open_story(request) as story:
        context = _story_context(request, story)
    headers = {"X-Studio-Live": str(int(context["progress"]["live"]))}
    back = local_path(request.query_params.get("back"), "")
    return page(request, "_panel.html", headers=headers, back=back, **context)


def scenes_fragment(request: Request) -> Response:
    with open_story(request) as story:
        context = _story_context(request, story)
    headers = {"X-Studio-Live": str(int(context["progress"]["live"]))}
    return page(request, "_scene_table.html", headers=headers, **context)


@form_post
async def start_drafting(request: Request, form: FormData) -> Response:
    """Draft (or go on drafting) in a worker; with kind=outline only up to the outline, for review."""
    story_id = request.path_params["story_id"]
    await run_in_threadpool(_check_story, request)  # 404 before a worker is asked for a missing story
    outline_first = form.get("kind") == "outline" and studio_of(request).config.outline_review
    kind = "outline" if outline_first else "resume"
    try:
        studio_of(request).supervisor.request(story_id, kind)
    except InputError as exc:
        raise HTTPException(409, exc.lines[0]) from None
    return see_other(local_path(form.get("back"), f"/stories/{story_id}"))


@form_post
async def stop_drafting(request: Request, form: FormData) -> Response:
    story_id = request.path_params["story_id"]
    studio_of(request).supervisor.stop(story_id)
    return see_other(local_path(form.get("back"), f"/stories/{story_id}"))


def _check_story(request: Request) -> None:
    with open_story(request):
        pass


# outline -----------------------------------------------------------------------------------
def outline_page(request: Request) -> Response:
    with open_story(request) as story:
        context = {
            "story": story.summary_row(),
            "acts": reads.outline_view(story),
            "busy": studio_of(request).supervisor.busy(story.id),
        }
    stale_from = whole_number(request.query_params.get("stale_from"), "stale_from")
    saved = {"stale_from": stale_from} if "saved" in request.query_params else None
    return page(request, "outline.html", saved=saved, **context)


def outline_edit_page(request: Request) -> Response:
    with open_story(request) as story:
        text = outline_yaml(story.outline())
        row = story.summary_row()
    return page(request, "outline_edit.html", story=row, outline_text=text, loose=[], lines=[])


@form_post
async def save_outline(request: Request, form: FormData) -> Response:
    """Replace the outline with the edited YAML, checked first: a refused outline changes nothing and
    the form comes back with each problem beside its line. While a worker drafts the story, the form
    comes back with the author's text too (409), to save once the worker stops."""
    text = str(form.get("outline_text") or "")

    def save() -> dict:
        with open_story(request) as story:
            return story.import_outline(text, "outline")

    story_id = request.path_params["story_id"]
    busy = studio_of(request).supervisor.busy(story_id)
    try:
        if busy:
            raise InputError(f"a worker is drafting story {story_id}; stop it, then save again")
        text = form_text(form, "outline_text")
        result = await run_in_threadpool(save)
    except InputError as exc:
        loose, lines = annotate(text, problems_of(exc.lines, text))
        with open_story(request) as story:
            row = story.summary_row()
        context = {"story": row, "outline_text": text, "loose": loose, "lines": lines}
        return page(
            request, "outline_edit.html", 409 if busy else 400, problem_count=len(exc.lines), **context
        )
    stale = result["stale_from"]
    return see_other(
        f"/stories/{result['story_id']}/outline?saved=1" + (f"&stale_from={stale}" if stale else "")
    )


# scenes ------------------------------------------------------------------------------------
def scene_page(request: Request) -> Response:
    number = scene_number(request)
    asked = whole_number(request.query_params.get("version"), "version")
    studio = studio_of(request)
    with open_story(request) as story:
        current = _drafted_scene(story, number)
        shown = _drafted_scene(story, number, asked) if asked is not None else current
        worker = studio.supervisor.state_of(story.id)
        context = {
            "story": story.summary_row(),
            "scene": reads.scene_view(current, shown, number, story.scene_floor()),
            "versions": story.versions(number),
            "flags": [f for f in story.flags() if f["idx"] == number - 1],
            "total": story.planned_scenes(),
            "drafted": len(story.scenes()),
            "progress": reads.progress(story, worker),
            "worker": worker,
            "back": f"/stories/{story.id}/scenes/{number}",
            "saved": whole_number(request.query_params.get("saved"), "saved"),
            "draft_key": f"novelcraft-draft:{story.id}:{number}",
            "experts": _expert_names(studio.config.settings),
        }
    return page(request, "scene.html", **context)


def _expert_names(settings: Settings) -> list[str]:
    registry = load_registry(settings.experts)
    return registry.names() if registry else []


@form_post
async def redraft_scene(request: Request, form: FormData) -> Response:
    story_id, number = request.path_params["story_id"], scene_number(request)

    def check() -> None:
        with open_story(request) as story:
            if _drafted_scene(story, number).locked:
                raise HTTPException(409, f"scene {number} is locked; unlock it first")

    await run_in_threadpool(check)
    try:
        studio_of(request).supervisor.request(story_id, "redraft", number, cascade=form.get("cascade") == "1")
    except InputError as exc:
        raise HTTPException(409, exc.lines[0]) from None
    return see_other(f"/stories/{story_id}/scenes/{number}")


@form_post
async def lock_scene(request: Request, form: FormData) -> Response:
    """Lock (locked=1) or unlock (locked=0) a scene: a cascade or an outline edit never redrafts a
    locked scene."""
    _refuse_while_busy(request)
    number = scene_number(request)

    def lock() -> None:
        with open_story(request) as story:
            story.lock(number, form.get("locked") == "1")

    await run_in_threadpool(lock)
    return see_other(
        local_path(form.get("back"), f"/stories/{request.path_params['story_id']}/scenes/{number}")
    )


@form_post
async def use_version(request: Request, form: FormData) -> Response:
    """The book uses another version of the scene; the summaries after it become stale (a resume
    recomputes them)."""
    _refuse_while_busy(request)
    number = scene_number(request)
    version = whole_number(form.get("version"), "version")
    if version is None:
        raise HTTPException(400, "no version given")

    def use() -> None:
        with open_story(request) as story:
            if _drafted_scene(story, number).locked:
                raise HTTPException(409, f"scene {number} is locked; unlock it first")
            story.use_version(number, version)

    await run_in_threadpool(use)
    return see_other(f"/stories/{request.path_params['story_id']}/scenes/{number}")


def scene_edit_page(request: Request) -> Response:
    number = scene_number(request)
    with open_story(request) as story:
        current = _drafted_scene(story, number)
        context = _edit_context(story, current, number, current.text, current.version)
    return page(request, "scene_edit.html", **context)


def _edit_context(story: Story, current: Scene, number: int, text: str, based_on: int) -> dict:
    return {
        "story": story.summary_row(),
        "number": number,
        "total": story.planned_scenes(),
        "goal": current.goal,
        "scene_text": text,
        "based_on": based_on,
        "in_use": current.version,
        "locked": current.locked,
        "draft_key": f"novelcraft-draft:{story.id}:{number}",
        "problems": [],
    }


@form_post
async def save_scene_text(request: Request, form: FormData) -> Response:
    """The author's text of the scene as a new version, used by the book; the running summaries from
    this scene on are recomputed by the next resume. Refused, with the text back in the form and
    nothing saved, while a worker drafts the story, while the scene is locked, and when the scene
    changed since the editor opened (its version is not the one the text was edited from)."""
    story_id, number = request.path_params["story_id"], scene_number(request)
    text = str(form.get("scene_text") or "")
    based_on = whole_number(form.get("based_on"), "based_on")
    busy = studio_of(request).supervisor.busy(story_id)

    def save() -> tuple[int | None, int, list[str]]:
        with open_story(request) as story:
            current = _drafted_scene(story, number)
            if busy:
                return None, 409, [f"a worker is drafting story {story_id}; stop it, then save again"]
            if current.locked:
                return None, 409, [f"scene {number} is locked; unlock it, then save again"]
            try:
                return story.import_scene(number, form_text(form, "scene_text"), based_on=based_on), 303, []
            except VersionConflict as exc:
                return None, 409, [*exc.lines, "your text is below: save again to make it the newest version"]
            except InputError as exc:
                return None, 400, exc.lines

    version, status, problems = await run_in_threadpool(save)
    if version is not None:
        return see_other(f"/stories/{story_id}/scenes/{number}?saved={version}")
    with open_story(request) as story:
        current = _drafted_scene(story, number)
        # After a conflict the text is based on what the book uses now: a second save goes through.
        context = {**_edit_context(story, current, number, text, current.version), "problems": problems}
    return page(request, "scene_edit.html", status, **context)


REWRITE_KINDS = get_args(RewriteKind)
# A selection longer than this is most of a scene: a redraft is the tool for that.
MAX_PASSAGE_WORDS = 600


def _model_settings(request: Request, story: Story) -> Settings:
    """The story's own settings with this studio's model: the backend a worker would draft with."""
    studio = studio_of(request).config.settings
    keys = ("backend", "model", "adapters", "experts", "n_ctx", "backend_options")
    return story.settings(flags={k: getattr(studio, k) for k in keys})


@form_post
async def rewrite_selection(request: Request, form: FormData) -> Response:
    """The model's proposal for the passage the author selected, beside the original, to accept (a
    new version) or discard. Asking changes nothing in the story; the call is recorded and budgeted."""
    number = scene_number(request)
    passage = form_text(form, "passage").strip()
    kind = str(form.get("kind") or "rewrite")
    note = form_text(form, "note").strip()[:200]
    expert = str(form.get("expert") or "") or None
    if kind not in REWRITE_KINDS:
        raise HTTPException(400, f"kind: one of {', '.join(REWRITE_KINDS)}")
    if not passage:
        raise HTTPException(400, "passage: select a passage of the scene first")
    if len(passage.split()) > MAX_PASSAGE_WORDS:
        raise HTTPException(400, f"passage: {len(passage.split())} words; select at most {MAX_PASSAGE_WORDS}")

    def ask() -> dict:
        with open_story(request) as story:
            current = _drafted_scene(story, number)
            proposal = story.rewrite(
                number, passage, kind, note, expert=expert, settings=_model_settings(request, story)
            )
            return {
                "story": story.summary_row(),
                "number": number,
                "passage": passage,
                "proposal": proposal,
                "kind": kind,
                "note": note,
                "expert": expert or "",
                "based_on": current.version,
            }

    try:
        context = await run_in_threadpool(ask)
    except DraftFailed as exc:
        raise HTTPException(502, f"the model did not answer: {exc.lines[0]}") from None
    return page(request, "scene_rewrite.html", **context)


@form_post
async def accept_rewrite(request: Request, form: FormData) -> Response:
    """The accepted proposal in place of the passage: a new version the book uses. Refused (409) while
    a worker drafts the story, while the scene is locked, or when it changed since the proposal."""
    _refuse_while_busy(request)
    number = scene_number(request)
    passage, proposal = form_text(form, "passage"), form_text(form, "proposal")
    based_on = whole_number(form.get("based_on"), "based_on")
    if based_on is None or not proposal.strip():
        raise HTTPException(400, "the proposal or the version it was made for is missing")

    def accept() -> int:
        with open_story(request) as story:
            if _drafted_scene(story, number).locked:
                raise HTTPException(409, f"scene {number} is locked; unlock it first")
            try:
                return story.accept_rewrite(number, passage, proposal, based_on)
            except VersionConflict as exc:
                raise HTTPException(409, f"{exc.lines[0]}; ask for the rewrite again") from None

    version = await run_in_threadpool(accept)
    return see_other(f"/stories/{request.path_params['story_id']}/scenes/{number}?saved={version}")


def scene_diff_page(request: Request) -> Response:
    """Two versions of the scene word by word (a: the older by default, b: the one in use)."""
    number = scene_number(request)
    with open_story(request) as story:
        current = _drafted_scene(story, number)
        versions = story.versions(number)
        a = whole_number(request.query_params.get("a"), "a")
        b = whole_number(request.query_params.get("b"), "b")
        if b is None:
            b = current.version
        if a is None:
            older = [v.version for v in versions if v.version < b]
            a = older[-1] if older else b
        left, right = _drafted_scene(story, number, a), _drafted_scene(story, number, b)
        context = {
            "story": story.summary_row(),
            "number": number,
            "a": left,
            "b": right,
            "in_use": current.version,
            "locked": current.locked,
            "versions": versions,
            "pieces": word_diff(left.text, right.text),
            "busy": studio_of(request).supervisor.busy(story.id),
        }
    return page(request, "scene_diff.html", **context)


def manuscript_page(request: Request) -> Response:
    with open_story(request) as story:
        context = {"story": story.summary_row(), "chapters": reads.manuscript(story)}
    return page(request, "manuscript.html", **context)


def flags_page(request: Request) -> Response:
    with open_story(request) as story:
        context = {"story": story.summary_row(), "flags": story.flags()}
    return page(request, "flags.html", **context)


# metrics and exports -----------------------------------------------------------------------
def metrics_page(request: Request) -> Response:
    studio = studio_of(request)
    with open_story(request) as story:
        row = story.summary_row()
        evaluated = studio.evaluations.get(story) if row["scenes"] else None
    context = {
        "story": row,
        "rows": metric_rows(evaluated) if evaluated else [],
        # Why a cohesion figure is missing (its model not installed, no continuity review).
        "notes": evaluated.cohesion.notes if evaluated and evaluated.cohesion else [],
        "charts": CHARTS if evaluated else (),
    }
    return page(request, "metrics.html", **context)


def chart(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in CHARTS:
        raise HTTPException(404, f"no chart {name}")
    with open_story(request) as story:
        if not story.stats()["scenes_done"]:
            raise HTTPException(404, "no scenes yet")
        evaluated = studio_of(request).evaluations.get(story)
    return Response(chart_png(name, evaluated), media_type="image/png", headers={"Cache-Control": "no-store"})


def export_download(request: Request) -> Response:
    try:
        fmt = ExportFormat(request.path_params["fmt"])
    except ValueError:
        raise HTTPException(404, f"no export format {request.path_params['fmt']}") from None
    with open_story(request) as story:
        if not story.stats()["scenes_done"]:
            raise HTTPException(404, "no scenes yet: nothing to download")
    folder = Path(tempfile.mkdtemp(prefix="novelcraft-export-"))
    try:
        with open_story(request) as story:
            out = folder / f"{slug(story.seed.title)}.{fmt.value}"
            story.export(out, fmt)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    media_type = MEDIA_TYPES.get(fmt.value) or mimetypes.guess_type(out.name)[0] or "application/octet-stream"
    return FileResponse(
        out,
        headers={"content-disposition": content_disposition(out.name)},
        media_type=media_type,
        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
    )


# A file name is at most 255 bytes on most file systems; the slug stays well under with its extension.
SLUG_BYTES = 200
# Latin letters that Unicode does not decompose into an ASCII letter and a mark.
_ASCII_LETTERS = str.maketrans(
    {"æ": "ae", "ø": "o", "œ": "oe", "ß": "ss", "đ": "d", "ð": "d", "ł": "l", "þ": "th"}
)


def slug(title: str) -> str:
    """A file name from a title in any script: its letters, marks and digits, lowercased, with every run
    of anything else (spaces, punctuation, path separators, control characters) one "-"."""
    text = unicodedata.normalize("NFC", title.lower())
    kept = "".join(c if unicodedata.category(c)[0] in "LMN" else " " for c in text)
    name = "-".join(kept.split()).encode()[:SLUG_BYTES].decode(errors="ignore")
    return name.strip("-") or "novel"


def ascii_name(name: str) -> str:
    """The file name for a client that reads only an ASCII filename=: accents off, other letters dropped."""
    stem, dot, ext = name.rpartition(".")
    letters = unicodedata.normalize("NFKD", (stem if dot else name).lower().translate(_ASCII_LETTERS))
    plain = re.sub(r"[^a-z0-9]+", "-", letters.encode("ascii", "ignore").decode()).strip("-") or "novel"
    return f"{plain}.{ext}" if dot else plain


def content_disposition(name: str) -> str:
    """An attachment named as written (RFC 5987 filename*, which browsers prefer), with an ASCII
    filename= beside it for the clients that read nothing else (RFC 6266)."""
    fallback = ascii_name(name)
    if fallback == name:
        return f'attachment; filename="{name}"'
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


# errors ------------------------------------------------------------------------------------
def _error_page(request: Request, status: int, message: str) -> Response:
    return page(request, "error.html", status, message=message, title=str(status))


async def input_error(request: Request, exc: Exception) -> Response:
    status = 404 if isinstance(exc, StoryNotFound | StoreError) else 400
    lines = exc.lines if isinstance(exc, NovelcraftError) else [str(exc)]
    return _error_page(request, status, "; ".join(lines))


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _error_page(request, exc.status_code, str(exc.detail))


ERROR_HANDLERS = {InputError: input_error, NovelcraftError: input_error, HTTPException: http_error}

ROUTES = [
    Route("/", stories_page),
    Route("/fragments/stories", stories_fragment),
    Route("/new", new_story_page),
    Route("/new", create_story, methods=["POST"]),
    Route("/stories/{story_id}", story_page),
    Route("/stories/{story_id}/progress", progress_json),
    Route("/stories/{story_id}/fragments/panel", panel_fragment),
    Route("/stories/{story_id}/fragments/scenes", scenes_fragment),
    Route("/stories/{story_id}/draft", start_drafting, methods=["POST"]),
    Route("/stories/{story_id}/stop", stop_drafting, methods=["POST"]),
    Route("/stories/{story_id}/outline", outline_page),
    Route("/stories/{story_id}/outline/edit", outline_edit_page),
    Route("/stories/{story_id}/outline/edit", save_outline, methods=["POST"]),
    Route("/stories/{story_id}/scenes/{number:int}", scene_page),
    Route("/stories/{story_id}/scenes/{number:int}/redraft", redraft_scene, methods=["POST"]),
    Route("/stories/{story_id}/scenes/{number:int}/lock", lock_scene, methods=["POST"]),
    Route("/stories/{story_id}/scenes/{number:int}/use", use_version, methods=["POST"]),
    Route("/stories/{story_id}/scenes/{number:int}/edit", scene_edit_page),
    Route("/stories/{story_id}/scenes/{number:int}/edit", save_scene_text, methods=["POST"]),
    Route("/stories/{story_id}/scenes/{number:int}/diff", scene_diff_page),
    Route("/stories/{story_id}/scenes/{number:int}/rewrite", rewrite_selection, methods=["POST"]),
    Route("/stories/{story_id}/scenes/{number:int}/rewrite/accept", accept_rewrite, methods=["POST"]),
    Route("/stories/{story_id}/read", manuscript_page),
    Route("/stories/{story_id}/flags", flags_page),
    Route("/stories/{story_id}/metrics", metrics_page),
    Route("/stories/{story_id}/charts/{name}.png", chart),
    Route("/stories/{story_id}/export/{fmt}", export_download),
]
