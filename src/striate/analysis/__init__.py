"""Model analysis: layer tables (parameters, multiply-adds, output shapes) and receptive fields.

>>> from striate import analysis, models
>>> analysis.summary(models.create("lenet5")).total_params > 0
True
"""

from .receptive_field import LayerField, receptive_field
from .summary import Row, Summary, layer_macs, summary
from .trace import trace

__all__ = ["LayerField", "Row", "Summary", "layer_macs", "receptive_field", "summary", "trace"]
