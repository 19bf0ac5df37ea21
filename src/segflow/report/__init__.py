"""The self-contained HTML report."""

from segflow.report._report import Section, build_sections, render_report, write_report

__all__ = ["Section", "build_sections", "render_report", "write_report"]
