"""ResNet width study (SPEC §3): the model, a fast exact training loop, packed seeds, sweeps."""

from emnet.resnet.model import (
    Block,
    PackedResNet,
    ResNet,
    count_parameters,
    make_resnet,
    pack,
    resnet_parameter_count,
)
from emnet.resnet.plots import plot_curves, plot_summary
from emnet.resnet.results import METRICS, RunResult, SweepResult
from emnet.resnet.settings import REPORT_SETTINGS, REPORT_WIDTHS
from emnet.resnet.sweeps import SweepConfig, TaskResult, run_task, sweep
from emnet.resnet.train import (
    OPTIMIZERS,
    SingleSampleBatchWarning,
    epoch_order,
    evaluate,
    fit_and_validate,
    make_optimizer,
)

__all__ = [
    "OPTIMIZERS",
    "REPORT_SETTINGS",
    "REPORT_WIDTHS",
    "RunResult",
    "SweepConfig",
    "SweepResult",
    "METRICS",
    "TaskResult",
    "plot_curves",
    "plot_summary",
    "run_task",
    "sweep",
    "Block",
    "PackedResNet",
    "ResNet",
    "SingleSampleBatchWarning",
    "count_parameters",
    "epoch_order",
    "evaluate",
    "fit_and_validate",
    "make_optimizer",
    "make_resnet",
    "pack",
    "resnet_parameter_count",
]
