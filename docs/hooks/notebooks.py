"""mkdocs hook: publish the executed notebooks of ``notebooks/`` as pages ``notebooks/<name>``.

The notebooks stay where they are executed and tested (the repository's ``notebooks/`` folder).
This hook adds every ``*.ipynb`` there to the site's files before mkdocs-jupyter turns notebooks
into pages, so a new notebook needs only its line in the ``nav`` of ``mkdocs.yml``; with
``validation.omitted_files: warn`` the strict build fails until that line is there.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.livereload import LiveReloadServer
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

FOLDER = "notebooks"


def _notebooks(config: MkDocsConfig) -> Path:
    return Path(config.config_file_path).resolve().parent / FOLDER


@event_priority(100)  # before mkdocs-jupyter's on_files (priority 0) wraps the .ipynb files
def on_files(files: Files, config: MkDocsConfig) -> Files:
    folder = _notebooks(config)
    for path in sorted(folder.glob("*.ipynb")):
        files.append(
            File(
                f"{FOLDER}/{path.name}",
                src_dir=str(folder.parent),
                dest_dir=config.site_dir,
                use_directory_urls=config.use_directory_urls,
            )
        )
    return files


def on_serve(server: LiveReloadServer, config: MkDocsConfig, builder: object) -> LiveReloadServer:
    server.watch(str(_notebooks(config)))
    return server
