"""Drive the real ComfyUI frontend (the one the pinned runtime serves) with Playwright on Debian's Chromium.

Shared by tools/build_workflows.py (builds and screenshots the shipped workflows) and the browser tests.
Playwright never downloads a browser here: it launches /usr/bin/chromium (`make browser-deps`).
"""

from __future__ import annotations

import os
from pathlib import Path

CHROMIUM = Path(os.environ.get("HIERAFASH_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1600, "height": 1000}

# Server-side user settings for a clean, dialog-free first start (the frontend reads them from /settings).
SETTINGS = {
    "Comfy.TutorialCompleted": True,  # otherwise the first start opens the template browser
    "Comfy.Minimap.Visible": False,
    "Comfy.Workflow.WorkflowTabsPosition": "Topbar",
    # Each page starts empty: restoring the last page's tabs can land after (and over) a graph loaded on this one.
    "Comfy.Workflow.Persist": False,
}
# Per-browser state the frontend keeps in localStorage.
INIT_SCRIPT = "window.localStorage.setItem('vueNodesBannerDismissed', 'true');"

APP_READY = """(types) => !!(window.app && window.app.graph && window.app.canvas && window.LiteGraph
    && types.every((t) => t in window.LiteGraph.registered_node_types))"""


class ChromiumMissing(RuntimeError):
    pass


def require_chromium() -> Path:
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        raise ChromiumMissing(
            f"Chromium is not installed at {CHROMIUM}: the browser tier drives Debian's Chromium. "
            "Install it with `make browser-deps` (apt-get install chromium), or point HIERAFASH_CHROMIUM at one.")
    return CHROMIUM


def apply_settings(server, settings: dict | None = None) -> None:
    """Write the frontend's user settings through the server's own /settings API."""
    for key, value in {**SETTINGS, **(settings or {})}.items():
        status, _ = server.request("POST", f"/settings/{key}", value)
        if status != 200:
            raise RuntimeError(f"POST /settings/{key} -> {status}")


def launch(playwright, user_data_dir: Path, viewport: dict | None = None):
    """A persistent Chromium context with a fresh profile in user_data_dir."""
    context = playwright.chromium.launch_persistent_context(
        str(user_data_dir), executable_path=str(require_chromium()), args=CHROMIUM_ARGS, headless=True,
        viewport=viewport or VIEWPORT)
    context.add_init_script(INIT_SCRIPT)
    return context


def open_app(page, url: str, node_types=("HieraFashConceptIdeation",), timeout_ms: float = 180_000) -> None:
    """Load the app and wait until the graph exists and the given node types are registered."""
    page.goto(url, timeout=timeout_ms)
    page.wait_for_function(APP_READY, arg=list(node_types), timeout=timeout_ms)
