"""Test helper shared by the report tests: run the report with stand-in section builders."""

from __future__ import annotations

import dataclasses

import pytest


def replace_builds(monkeypatch: pytest.MonkeyPatch, builds: dict) -> None:
    """Run the report with ``builds[anchor]`` in place of those sections' builders."""
    from emnet.report import sections

    monkeypatch.setattr(
        sections,
        "SECTIONS",
        tuple(
            dataclasses.replace(s, build=builds.get(s.anchor, s.build)) for s in sections.SECTIONS
        ),
    )
