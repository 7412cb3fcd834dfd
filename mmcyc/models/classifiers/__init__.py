from .cam_classifier import CAMClassifier
from .lpcam import LPCAM
from .ssenet_classifier import SSENetClassifier

__all__ = ['CAMClassifier', 'LPCAM', 'SSENetClassifier']
