"""scikit-learn style IRFA estimator (NumPy / xarray in and out; no NWB)."""

from .irfa import IRFA, NotFittedError
from .persistence import load_model

__all__ = ["IRFA", "NotFittedError", "load_model"]
