"""Image-reconstruction estimators with the scikit-learn contract (NumPy / xarray; no NWB).

- :class:`IRFA`: the inverse receptive field attention model (PyTorch).
- :class:`RidgeReconstruction`: the linear baseline (scikit-learn).
- :func:`load_model`: a saved IRFA back from its file.
"""

from .irfa import IRF_CHANNEL_DIM, IRFA, NotFittedError, load_model
from .ridge import RidgeReconstruction

__all__ = ["IRFA", "IRF_CHANNEL_DIM", "NotFittedError", "RidgeReconstruction", "load_model"]
