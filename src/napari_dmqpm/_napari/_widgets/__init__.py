"""The dock widgets of napari-dmqpm: segment cells, fine-tune a model, follow cell growth.

Each widget only translates: it reads its fields, builds a request (an ``InferenceConfig`` or
fine-tuning options), runs one core function in a napari thread worker (``_work``, ``_jobs``)
and turns the results into layers on the GUI thread (``_outputs``). Set
``NAPARI_DMQPM_NOTHREADS=1`` to run the work synchronously (debugging, tests).
"""

from ._finetune import FinetuneWidget
from ._growth import GrowthWidget
from ._segment import SegmentWidget

__all__ = ["FinetuneWidget", "GrowthWidget", "SegmentWidget"]
