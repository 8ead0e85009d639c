"""The report's sections, in page order: the one list the runner reads.

Adding a section is one entry here: write ``emnet/report/section_<name>.py`` with
``build(ctx: Context) -> str`` (it runs its system on embedded data, saves figures and
tables through ``ctx``, records its numbers in ``ctx.results[<anchor>]`` and returns its
HTML), then add ``SectionSpec(title, anchor, section_<name>.build, lead=...)`` below at
the place it should stand in the page. The table of contents, the status badges, the
exit code and ``results.json`` follow from the list. The list is read when the report is
built, so a test can replace it (``monkeypatch.setattr(sections, "SECTIONS", ...)``).
"""

from __future__ import annotations

from emnet.report import (
    section_deepnet,
    section_em,
    section_errata,
    section_lca,
    section_resnet,
)
from emnet.report.context import SectionSpec

SECTIONS: tuple[SectionSpec, ...] = (
    SectionSpec(
        "§1 EM on binarized digits",
        "em",
        section_em.build,
        lead="A mixture of Bernoullis fitted by EM to scikit-learn's 1,797 digits, "
        "binarized at pixel ≥ 8 (SPEC §1, write-up part 1).",
    ),
    SectionSpec(
        "Latent class analysis on real survey data",
        "lca",
        section_lca.build,
        lead="Latent class models (emnet.mixture.CategoricalMixture) of the Stouffer–Toby "
        "values items and LSAT6/7: model selection with the bootstrap likelihood-ratio "
        "test, standard errors, poLCA's maxima; and covariates that predict class "
        "membership (latent class regression) on planted data.",
    ),
    SectionSpec(
        "§2 Deep net: forward and backward pass",
        "deepnet",
        section_deepnet.build,
        lead="f(x) = w₃·σ(w₂·σ(w₁·x)), its derivatives four ways, and the LeNet shapes of "
        "2(g)–(h) (SPEC §2, write-up part 2).",
    ),
    SectionSpec(
        "§3 ResNet width study",
        "resnet",
        section_resnet.build,
        lead="ResNet(C) trained on the digits for C = 1, 2, 4, 64 (SPEC §3, write-up part 3).",
    ),
    SectionSpec(
        "Errata",
        "errata",
        section_errata.build,
        lead="Where the write-up's algebra or answer differs from what this run verified, "
        "the corrected statement and the check that shows it.",
    ),
)
