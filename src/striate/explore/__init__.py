"""`striate explore`: a local web page that shows a model at work (see docs/explore.md).

`Explorer` computes what the page shows, `serve` runs the HTTP server, `LiveExplore` is the
training callback behind `striate train --explore`.
"""

from .arithmetic import output_arithmetic
from .live import LiveExplore
from .server import EventLog, ExploreServer, serve
from .session import Explorer, small_input_shape

__all__ = ["EventLog", "ExploreServer", "Explorer", "LiveExplore", "output_arithmetic", "serve",
           "small_input_shape"]
