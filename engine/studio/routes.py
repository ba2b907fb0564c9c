"""The studio's pages and actions: each handler opens the story, calls the Story API (or a read in
novelcraft.studio.reads), and renders a template or redirects. Drafting, redrafting and outlining are
handed to the worker supervisor; nothing slow runs inside a request but an export and the metrics.
A story whose worker runs is not edited under it: its outline, versions and locks wait (409)."""

from __future__ import annotations

import mimetypes
import re
import shutil
import tempfile
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any
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
from novelcraft.story.export import ExportFormat
from novelcraft.story.novel import Story
from novelcraft.studio import reads
from novelcraft.studio.charts import CHARTS, chart_png
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
        seed = parse_seed(text)
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
    stale_from = request.query_params.get("stale_from", "")
    saved = (
        {"stale_from": int(stale_from) if stale_from.isdigit() else None}
        if "saved" in request.query_params
        else None
    )
    return page(request, "outline.html", saved=saved, **context)


def outline_edit_page(request: Request) -> Response:
    with open_story(request) as story:
        text = outline_yaml(story.outline())
        row = story.summary_row()
    return page(request, "outline_edit.html", story=row, outline_text=text, loose=[], lines=[])


@form_post
async def save_outline(request: Request, form: FormData) -> Response:
    """Replace the outline with the edited YAML, checked first: a refused outline changes nothing and
    the form comes back with each problem beside its line."""
    _refuse_while_busy(request)
    text = str(form.get("outline_text") or "")

    def save() -> dict:
        with open_story(request) as story:
            return story.import_outline(text, "outline")

    try:
        result = await run_in_threadpool(save)
    except InputError as exc:
        loose, lines = annotate(text, problems_of(exc.lines, text))
        with open_story(request) as story:
            row = story.summary_row()
        context = {"story": row, "outline_text": text, "loose": loose, "lines": lines}
        return page(request, "outline_edit.html", 400, problem_count=len(exc.lines), **context)
    stale = result["stale_from"]
    return see_other(
        f"/stories/{result['story_id']}/outline?saved=1" + (f"&stale_from={stale}" if stale else "")
    )


# scenes ------------------------------------------------------------------------------------
def scene_page(request: Request) -> Response:
    number = request.path_params["number"]
    asked = request.query_params.get("version", "")
    studio = studio_of(request)
    with open_story(request) as story:
        current = _drafted_scene(story, number)
        shown = _drafted_scene(story, number, int(asked)) if asked.isdigit() else current
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
        }
    return page(request, "scene.html", **context)


@form_post
async def redraft_scene(request: Request, form: FormData) -> Response:
    story_id, number = request.path_params["story_id"], request.path_params["number"]

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
    number = request.path_params["number"]

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
    number = request.path_params["number"]
    version = str(form.get("version") or "")
    if not version.isdigit():
        raise HTTPException(400, "no version given")

    def use() -> None:
        with open_story(request) as story:
            story.use_version(number, int(version))

    await run_in_threadpool(use)
    return see_other(f"/stories/{request.path_params['story_id']}/scenes/{number}")


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
    Route("/stories/{story_id}/flags", flags_page),
    Route("/stories/{story_id}/metrics", metrics_page),
    Route("/stories/{story_id}/charts/{name}.png", chart),
    Route("/stories/{story_id}/export/{fmt}", export_download),
]
