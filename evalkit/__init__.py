"""evalkit: reproducible evaluation of vision-language models on the standard multimodal benchmarks.

The public surface: the nouns a task plugin or a script needs. Everything else is internal.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("evalkit")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+source"

from evalkit.data.readers import Dataset, Sample
from evalkit.protocols import PROTOCOLS, Protocol, get_protocol
from evalkit.records import Prediction, RunRecord, read_predictions, read_run_record
from evalkit.registry import all_tasks, get_task
from evalkit.scoring.types import Parsed, Scored
from evalkit.task import Task, Variant

__all__ = [
    "PROTOCOLS",
    "Dataset",
    "Parsed",
    "Prediction",
    "Protocol",
    "RunRecord",
    "Sample",
    "Scored",
    "Task",
    "Variant",
    "__version__",
    "all_tasks",
    "get_protocol",
    "get_task",
    "read_predictions",
    "read_run_record",
]
