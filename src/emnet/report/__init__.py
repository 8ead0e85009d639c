"""`emnet report`: the whole write-up reproduced as one HTML page.

:func:`build_report` runs the three systems on embedded data and writes ``index.html``
with its figures (``figures/``), tables (``tables/``) and every number (``results.json``).
"""

from emnet.report.build import build_report, check_out_dir
from emnet.report.context import Context, SectionSpec
from emnet.report.sections import SECTIONS

__all__ = ["SECTIONS", "Context", "SectionSpec", "build_report", "check_out_dir"]
