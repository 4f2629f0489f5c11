"""The model zoo: one module per family, each registering its builders by name.

>>> from striate import models
>>> models.create("lenet5_modern").default_input_shape
(28, 28, 1)
"""

# Importing a family registers its models: one line per family, kept in alphabetical order.
import striate.models.alexnet  # noqa: F401
import striate.models.allconv  # noqa: F401
import striate.models.alphago  # noqa: F401
import striate.models.densenet  # noqa: F401
import striate.models.efficientnet  # noqa: F401
import striate.models.fractalnet  # noqa: F401
import striate.models.googlenet  # noqa: F401
import striate.models.lenet  # noqa: F401
import striate.models.mobilenet  # noqa: F401
import striate.models.nfnet  # noqa: F401
import striate.models.regnet  # noqa: F401
import striate.models.resnet  # noqa: F401
import striate.models.squeezenet  # noqa: F401
import striate.models.textcnn  # noqa: F401
import striate.models.vgg  # noqa: F401
from striate.models.registry import create, names, register

__all__ = ["create", "names", "register"]
