"""aiclicks_pipeline: the AIclicks API into your warehouse, with dlt."""

from .source import aiclicks_source
from .sync import SyncContext

__all__ = ["aiclicks_source", "SyncContext"]
__version__ = "0.1.0"
