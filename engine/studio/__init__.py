"""novelcraft studio: a local web page to start, watch, steer and read drafting sessions.

A thin front end over `novelcraft.story.novel.Story`, like the CLI: pages read stories through the Story API,
and drafting runs in `novelcraft resume ID` worker processes the studio starts and tracks
(`novelcraft.studio.workers`), so a server restart loses nothing. Nothing here imports Starlette at
package import: the CLI mounts the command without loading the web stack.
"""
