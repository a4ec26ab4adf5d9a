"""Reports: the KPIs of a turn log as one self-contained HTML page."""

from voxloop.report.html import render_report, write_report

__all__ = ["render_report", "write_report"]
