"""The explorable leaderboard: one self-contained ``index.html`` per run folder (``write_html``)."""
from .build import page_data, recorded_command, render_html, write_html

__all__ = ["page_data", "recorded_command", "render_html", "write_html"]
