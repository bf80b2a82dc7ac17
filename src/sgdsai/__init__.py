"""SGD-SaI: SGD with learning-rate scaling at initialisation (arXiv 2412.11768)."""

from sgdsai.functional import sgdsai
from sgdsai.gsnr import tensor_gsnr
from sgdsai.optimizer import SGDSaI

__all__ = ["SGDSaI", "__version__", "sgdsai", "tensor_gsnr"]
__version__ = "0.1.0"
