"""Activation functions: elementwise non-linearities and the softmax family.

Each one follows PyTorch's definition, including the value of the derivative at the kinks (ReLU
passes no gradient at 0, ReLU6 none at 0 or 6), so that a model gives PyTorch's numbers.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..kernels import channelwise
from ..tensor import Op, Tensor, as_tensor

__all__ = [
    "elu",
    "gelu",
    "hardsigmoid",
    "hardswish",
    "leaky_relu",
    "log_softmax",
    "relu",
    "relu6",
    "sigmoid",
    "silu",
    "softmax",
    "softplus",
    "tanh",
]


def _number(op: str, name: str, value) -> float:
    """A real hyper-parameter as a Python float (a weak scalar: float32 data stays float32)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{op}: {name} must be a real number, got {value!r}")
    return float(value)


def _axis(op: str, axis, ndim: int) -> int:
    """`axis` checked against an input of rank `ndim`, made non-negative."""
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"{op}: axis must be an int, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for an input with {ndim} dimensions")
    return int(axis) % ndim


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) without overflow: exp only ever sees -|x|."""
    e = np.exp(-np.abs(x))  # in (0, 1]
    return np.where(x >= 0, 1, e) / (1 + e)


# ===== rectifiers ==============================================================================
class ReLU(Op):
    def forward(self, x):
        y = channelwise.relu(x)
        # The gradient flows where the input was positive (not at 0), that is where y > 0. The
        # output is kept rather than a mask: the next layer holds it anyway, so it costs nothing.
        self.y = y if self.needs_grad[0] else None
        return y

    def backward(self, dy):
        return (channelwise.relu_gradient(dy, self.y),)


def relu(x) -> Tensor:
    """Rectified linear unit.

    y = max(0, x); dy/dx = 1 where x > 0, else 0 (also at 0, as PyTorch).

    x: any shape. Returns the same shape.

    >>> relu(np.array([-1.0, 0.0, 2.0])).data
    array([0., 0., 2.])
    """
    return ReLU.apply(x)


class LeakyReLU(Op):
    def forward(self, x, negative_slope):
        self.positive, self.negative_slope = x > 0, negative_slope
        return np.where(self.positive, x, x * negative_slope)

    def backward(self, dy):
        return (np.where(self.positive, dy, dy * self.negative_slope),)


def leaky_relu(x, negative_slope: float = 0.01) -> Tensor:
    """Leaky rectifier: a small slope for negative inputs keeps their gradient alive.

    y = x if x > 0 else negative_slope * x  (= max(negative_slope * x, x) for slopes below 1).

    x: any shape. Returns the same shape.

    >>> leaky_relu(np.array([-2.0, 3.0]), 0.1).data
    array([-0.2,  3. ])
    """
    slope = _number("leaky_relu", "negative_slope", negative_slope)
    return LeakyReLU.apply(x, negative_slope=slope)


class ELU(Op):
    def forward(self, x, alpha):
        self.x, self.alpha = x, alpha
        return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))

    def backward(self, dy):
        x = self.x
        return (np.where(x > 0, dy, dy * self.alpha * np.exp(np.minimum(x, 0))),)


def elu(x, alpha: float = 1.0) -> Tensor:
    """Exponential linear unit: smooth for negative inputs, saturating at -alpha.

    y = x if x > 0 else alpha * (exp(x) - 1)  (= max(alpha * (exp(x) - 1), x) for alpha <= 1).

    x: any shape. Returns the same shape.

    >>> elu(np.zeros((2, 3))).shape
    (2, 3)
    """
    return ELU.apply(x, alpha=_number("elu", "alpha", alpha))


class ReLU6(Op):
    def forward(self, x):
        self.inside = (x > 0) & (x < 6)  # hardtanh's rule: no gradient at 0 or at 6
        return np.clip(x, 0, 6)

    def backward(self, dy):
        return (dy * self.inside,)


def relu6(x) -> Tensor:
    """ReLU capped at 6 (MobileNet): robust under low-precision arithmetic.

    y = min(max(0, x), 6); dy/dx = 1 for 0 < x < 6, else 0.

    x: any shape. Returns the same shape.

    >>> relu6(np.array([-1.0, 3.0, 9.0])).data
    array([0., 3., 6.])
    """
    return ReLU6.apply(x)


# ===== smooth gates ============================================================================
class Sigmoid(Op):
    def forward(self, x):
        self.y = _sigmoid(x)  # the derivative is y * (1 - y)
        return self.y

    def backward(self, dy):
        return (dy * self.y * (1 - self.y),)


def sigmoid(x) -> Tensor:
    """Logistic function, computed without overflow for large |x|.

    y = 1 / (1 + exp(-x)); dy/dx = y * (1 - y).

    x: any shape. Returns the same shape.

    >>> sigmoid(np.zeros(3)).data
    array([0.5, 0.5, 0.5])
    """
    return Sigmoid.apply(x)


class Tanh(Op):
    def forward(self, x):
        self.y = np.tanh(x)  # the derivative is 1 - y^2
        return self.y

    def backward(self, dy):
        return (dy * (1 - self.y * self.y),)


def tanh(x) -> Tensor:
    """Hyperbolic tangent.

    y = tanh(x); dy/dx = 1 - y^2.

    x: any shape. Returns the same shape.

    >>> tanh(np.zeros((4, 2))).shape
    (4, 2)
    """
    return Tanh.apply(x)


class SiLU(Op):
    def forward(self, x):
        self.x, self.s = x, _sigmoid(x)
        return x * self.s

    def backward(self, dy):
        s = self.s
        return (dy * s * (1 + self.x * (1 - s)),)


def silu(x) -> Tensor:
    """Sigmoid-weighted linear unit, also called swish (EfficientNet).

    y = x * sigmoid(x); dy/dx = s * (1 + x * (1 - s)) with s = sigmoid(x).

    x: any shape. Returns the same shape.

    >>> silu(np.zeros((2, 2))).shape
    (2, 2)
    """
    return SiLU.apply(x)


class Softplus(Op):
    def forward(self, x, beta, threshold):
        bx = x * beta
        self.linear = bx > threshold  # reverts to the identity there, as PyTorch does
        self.s = _sigmoid(bx)  # the derivative of log(1 + exp(bx)) / beta
        return np.where(self.linear, x, np.logaddexp(0, bx) / beta)

    def backward(self, dy):
        return (np.where(self.linear, dy, dy * self.s),)


def softplus(x, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """Smooth approximation of ReLU.

    y = log(1 + exp(beta * x)) / beta, and y = x where beta * x > threshold (PyTorch's rule).

    x: any shape. Returns the same shape.

    >>> softplus(np.zeros((3,))).shape
    (3,)
    """
    return Softplus.apply(
        x,
        beta=_number("softplus", "beta", beta),
        threshold=_number("softplus", "threshold", threshold),
    )


# Rational approximations of erf and erfc from the Cephes library (ndtr.c, S. L. Moshier):
# relative error below 4e-16 on [0, 1] and 6e-14 beyond, so GELU matches PyTorch in float64.
_ERF_T = (9.60497373987051638749e0, 9.00260197203842689217e1, 2.23200534594684319226e3,
          7.00332514112805075473e3, 5.55923013010394962768e4)
_ERF_U = (1.0, 3.35617141647503099647e1, 5.21357949780152679795e2, 4.59432382970980127987e3,
          2.26290000613890934246e4, 4.92673942608635921086e4)
_ERFC_P = (2.46196981473530512524e-10, 5.64189564831068821977e-1, 7.46321056442269912687e0,
           4.86371970985681366614e1, 1.96520832956077098242e2, 5.26445194995477358631e2,
           9.34528527171957607540e2, 1.02755188689515710272e3, 5.57535335369399327526e2)
_ERFC_Q = (1.0, 1.32281951154744992508e1, 8.67072140885989742329e1, 3.54937778887819891062e2,
           9.75708501743205489753e2, 1.82390916687909736289e3, 2.24633760818710981792e3,
           1.65666309194161350182e3, 5.57535340817727675546e2)
_ERFC_R = (5.64189583547755073984e-1, 1.27536670759978104416e0, 5.01905042251180477414e0,
           6.16021097993053585195e0, 7.40974269950448939160e0, 2.97886665372100240670e0)
_ERFC_S = (1.0, 2.26052863220117276590e0, 9.39603524938001434673e0, 1.20489539808096656605e1,
           1.70814450747565897222e1, 9.60896809063285878198e0, 3.36907645100081516050e0)


def _polynomial(x: np.ndarray, coefficients: tuple[float, ...]) -> np.ndarray:
    """Horner's rule, highest power first."""
    result = np.full_like(x, coefficients[0])
    for c in coefficients[1:]:
        result = result * x + c
    return result


def _erf(x: np.ndarray) -> np.ndarray:
    """Error function, elementwise, computed in float64 and returned in x's dtype."""
    x64 = x.astype(np.float64)
    a = np.abs(x64)
    # Each branch is evaluated everywhere on clamped arguments (no overflow), then one is chosen.
    z = np.minimum(a, 1.0) ** 2
    small = np.minimum(a, 1.0) * _polynomial(z, _ERF_T) / _polynomial(z, _ERF_U)
    mid = np.clip(a, 1.0, 8.0)
    far = np.clip(a, 8.0, 30.0)  # erfc(30) underflows to 0
    erfc = np.exp(-np.minimum(a, 30.0) ** 2) * np.where(
        a < 8.0,
        _polynomial(mid, _ERFC_P) / _polynomial(mid, _ERFC_Q),
        _polynomial(far, _ERFC_R) / _polynomial(far, _ERFC_S),
    )
    return (np.sign(x64) * np.where(a <= 1.0, small, 1.0 - erfc)).astype(x.dtype, copy=False)


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_KAPPA = 0.044715


class GELU(Op):
    def forward(self, x, approximate):
        self.x, self.approximate = x, approximate
        if approximate == "tanh":
            self.t = np.tanh(_SQRT_2_OVER_PI * (x + _GELU_KAPPA * x * x * x))
            return 0.5 * x * (1 + self.t)
        self.cdf = 0.5 * (1 + _erf(x * math.sqrt(0.5)))  # Phi(x), the Gaussian CDF
        return x * self.cdf

    def backward(self, dy):
        x = self.x
        if self.approximate == "tanh":
            t = self.t
            inner = _SQRT_2_OVER_PI * (1 + 3 * _GELU_KAPPA * x * x)  # d(tanh argument)/dx
            return (dy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * inner),)
        pdf = np.exp(-0.5 * x * x) * (1 / math.sqrt(2 * math.pi))  # phi(x)
        return (dy * (self.cdf + x * pdf),)


def gelu(x, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit.

    y = x * Phi(x) = 0.5 * x * (1 + erf(x / sqrt(2)));  with approximate='tanh':
    y = 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3))).

    x: any shape. Returns the same shape.

    >>> gelu(np.zeros((2, 5))).shape
    (2, 5)
    """
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU.apply(x, approximate=approximate)


class Hardsigmoid(Op):
    def forward(self, x):
        self.inside = (x > -3) & (x < 3)
        return np.clip(x + 3, 0, 6) / 6

    def backward(self, dy):
        return (dy * self.inside / 6,)


def hardsigmoid(x) -> Tensor:
    """Piecewise-linear sigmoid (MobileNetV3's squeeze-and-excitation gate).

    y = min(max(x + 3, 0), 6) / 6; dy/dx = 1/6 for -3 < x < 3, else 0.

    x: any shape. Returns the same shape.

    >>> hardsigmoid(np.array([-4.0, 0.0, 4.0])).data
    array([0. , 0.5, 1. ])
    """
    return Hardsigmoid.apply(x)


class Hardswish(Op):
    def forward(self, x):
        self.x = x
        return x * np.clip(x + 3, 0, 6) / 6

    def backward(self, dy):
        x = self.x
        # PyTorch's piecewise derivative: 0 up to -3, x/3 + 1/2 strictly between, 1 from 3.
        slope = np.where(x <= -3, 0, np.where(x < 3, x / 3 + 0.5, 1))
        return (dy * slope,)


def hardswish(x) -> Tensor:
    """Piecewise-quadratic swish (MobileNetV3).

    y = x * min(max(x + 3, 0), 6) / 6.

    x: any shape. Returns the same shape.

    >>> hardswish(np.array([0.0, 4.0])).data
    array([0., 4.])
    """
    return Hardswish.apply(x)


# ===== softmax family ==========================================================================
class Softmax(Op):
    def forward(self, x, axis):
        e = np.exp(x - x.max(axis=axis, keepdims=True))  # shifted: exp never overflows
        self.y, self.axis = e / e.sum(axis=axis, keepdims=True), axis
        return self.y

    def backward(self, dy):
        y = self.y
        # Jacobian-vector product of softmax: y * (dy - <dy, y>) along the axis.
        return (y * (dy - (dy * y).sum(axis=self.axis, keepdims=True)),)


def softmax(x, axis: int = -1) -> Tensor:
    """Normalised exponentials along one axis: a probability distribution.

    y_i = exp(x_i - max(x)) / sum_j exp(x_j - max(x)).

    x: any shape. Returns the same shape; entries along `axis` sum to 1.

    >>> softmax(np.zeros((2, 4))).data.sum(axis=-1)
    array([1., 1.])
    """
    x = as_tensor(x)
    return Softmax.apply(x, axis=_axis("softmax", axis, x.ndim))


class LogSoftmax(Op):
    def forward(self, x, axis):
        z = x - x.max(axis=axis, keepdims=True)
        y = z - np.log(np.exp(z).sum(axis=axis, keepdims=True))
        self.p, self.axis = np.exp(y), axis  # softmax, for the backward
        return y

    def backward(self, dy):
        return (dy - self.p * dy.sum(axis=self.axis, keepdims=True),)


def log_softmax(x, axis: int = -1) -> Tensor:
    """Logarithm of softmax, computed stably as x - max - log(sum(exp(x - max))).

    y_i = x_i - logsumexp(x).

    x: any shape. Returns the same shape.

    >>> log_softmax(np.zeros((3, 5)), axis=1).shape
    (3, 5)
    """
    x = as_tensor(x)
    return LogSoftmax.apply(x, axis=_axis("log_softmax", axis, x.ndim))
